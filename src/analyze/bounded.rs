//! A map with a cap: inserting past it evicts the oldest entry, and counts it.
//! Keeps every analysis table's memory bounded whatever the traffic.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::hash::Hash;

use hashbrown::HashTable;

use crate::prefetch;

/// Keys come from the network, so the hasher must resist crafted collisions
/// (randomly keyed), and be fast: ahash rather than std's SipHash.
type Hasher = ahash::RandomState;

/// Entries reserved at creation, at most (a huge --max-entries grows as used).
const PREALLOCATE_MAX: usize = 1 << 16;

/// The values live in `slots`, apart from the hash table, which holds only
/// each key and its slot number. The analysis's values are hundreds of
/// bytes; in the table itself they made it megabytes, so that under churn
/// every probe missed the cache (perf: a fifth of the ldm-only run in
/// `entry`).
#[derive(Debug)]
pub struct BoundedMap<K, V> {
    table: HashTable<(K, u32)>,
    hasher: Hasher,
    /// Values by slot; `None` for a slot freed by `remove`, until reused. A
    /// slot freed by an eviction keeps its value for the entry that takes
    /// it, which is the next one added.
    slots: Vec<Option<V>>,
    free: Vec<u32>,
    /// Entries in insertion order: the front is the oldest, the next to go.
    order: VecDeque<Aged<K>>,
    cap: usize,
    pub evicted: u64,
}

/// An entry's place in the age order. Under churn every new entry evicts
/// the oldest, whose bucket has long left the caches; knowing where it is
/// spares the eviction a probe and lets the eviction before fetch it (perf:
/// a tenth of the ldm-only run was that probe's cache miss).
#[derive(Debug)]
struct Aged<K> {
    key: K,
    /// Where the table put the key. Only a hint: the table moves its
    /// entries when it rehashes, so the key there is checked before use.
    /// (A u32 keeps the order small. Past 2^32 buckets, which only a huge
    /// --max-entries makes, the hint is u32::MAX, and the check sends the
    /// eviction to the probe.)
    bucket: u32,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    pub fn new(cap: usize) -> BoundedMap<K, V> {
        // The table is sized up front for twice the cap: hashbrown grows a
        // table whose tombstones (from evictions) fill it unless it is at
        // most half full, and growing copies the table while the old one is
        // still allocated, which showed as the peak of RSS (massif).
        let cap = cap.clamp(1, u32::MAX as usize);
        let reserve = cap.saturating_mul(2).min(PREALLOCATE_MAX);
        BoundedMap {
            table: HashTable::with_capacity(reserve),
            hasher: Hasher::new(),
            slots: Vec::with_capacity(cap.min(PREALLOCATE_MAX)),
            free: Vec::new(),
            order: VecDeque::with_capacity(reserve),
            cap,
            evicted: 0,
        }
    }

    /// The slot of `key`, looked up by any borrowed form of it.
    fn slot_of<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
    {
        // `Borrow` promises that a key and its borrowed form hash the same.
        let hash = self.hasher.hash_one(key);
        let (_, slot) = self.table.find(hash, |(k, _)| k.borrow() == key)?;
        Some(*slot as usize)
    }

    /// The value of `key`, looked up by any borrowed form of it (a `&[u8]`
    /// for a `Vec<u8>` key, with no allocation).
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let slot = self.slot_of(key)?;
        self.slots.get(slot)?.as_ref()
    }

    pub fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let slot = self.slot_of(key)?;
        self.slots.get_mut(slot)?.as_mut()
    }

    /// The entry for `key`, made with `make` (evicting the oldest entry if
    /// the map is full) when there is none.
    pub fn entry(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let hash = self.hasher.hash_one(&key);
        if let Some(&(_, slot)) = self.table.find(hash, |(k, _)| *k == key) {
            return self.slots[slot as usize].get_or_insert_with(make);
        }
        let slot = self.add(hash, key);
        self.slots[slot].insert(make())
    }

    /// As `entry`, but a new entry that takes the slot of an evicted one is
    /// that value made new by `reset`, rather than a value made by `make`
    /// and copied in. Under churn the slot has left the caches, and copying
    /// a whole value there cost a tenth of the ldm-only run (perf, `memmove`).
    pub fn entry_reusing(&mut self, key: K, make: impl FnOnce() -> V, reset: impl FnOnce(&mut V)) -> &mut V {
        let hash = self.hasher.hash_one(&key);
        if let Some(&(_, slot)) = self.table.find(hash, |(k, _)| *k == key) {
            return self.slots[slot as usize].get_or_insert_with(make);
        }
        let slot = self.add(hash, key);
        match &mut self.slots[slot] {
            Some(evicted) => {
                reset(evicted);
                evicted
            }
            empty @ None => empty.insert(make()),
        }
    }

    /// Adds `key`, which is not in the map, evicting the oldest entry if
    /// the map is full, and returns its slot. The slot may still hold the
    /// value of an evicted entry.
    fn add(&mut self, hash: u64, key: K) -> usize {
        if self.table.len() >= self.cap {
            self.evict_oldest();
        }
        let slot = self.free_slot();
        let hasher = &self.hasher;
        let bucket = self.table.insert_unique(hash, (key.clone(), slot), |(k, _)| hasher.hash_one(k)).bucket_index();
        let bucket = u32::try_from(bucket).unwrap_or(u32::MAX);
        self.order.push_back(Aged { key, bucket });
        slot as usize
    }

    /// A slot for a new entry: one freed before, else a new one.
    fn free_slot(&mut self) -> u32 {
        if let Some(slot) = self.free.pop() {
            return slot;
        }
        self.slots.push(None);
        // At most `cap` slots are ever live, and the cap fits in a u32.
        (self.slots.len() - 1) as u32
    }

    fn evict_oldest(&mut self) {
        while let Some(oldest) = self.order.pop_front() {
            if !self.forget_aged(&oldest) {
                continue;
            }
            // The value stays where it lies, for the new entry to reuse:
            // moving it out, or dropping it and writing a new one, copied
            // hundreds of bytes per eviction.
            self.evicted += 1;
            self.prefetch_next_eviction();
            return;
        }
    }

    /// Forgets the key of an age-order place and frees its slot; false if
    /// the key was no longer in the map.
    fn forget_aged(&mut self, aged: &Aged<K>) -> bool {
        let at_hint = match self.table.get_bucket_entry(aged.bucket as usize) {
            Ok(entry) if entry.get().0 == aged.key => {
                let ((_, slot), _) = entry.remove();
                Some(slot)
            }
            _ => None,
        };
        let Some(slot) = at_hint else {
            return self.forget(&aged.key).is_some();
        };
        self.free.push(slot);
        true
    }

    /// Forgets `key` and frees its slot, whose value the caller takes, or
    /// leaves for the slot's next entry.
    fn forget(&mut self, key: &K) -> Option<usize> {
        let hash = self.hasher.hash_one(key);
        let ((_, slot), _) = self.table.find_entry(hash, |(k, _)| k == key).ok()?.remove();
        self.free.push(slot);
        Some(slot as usize)
    }

    /// Fetches the oldest key's bucket, which the next eviction removes,
    /// while other work runs. (Fetching its value too, which the next new
    /// entry takes, made no difference in time, with or without
    /// `entry_reusing`.)
    fn prefetch_next_eviction(&self) {
        let Some(next) = self.order.front() else { return };
        if let Some(bucket) = self.table.get_bucket(next.bucket as usize) {
            prefetch::line((bucket as *const (K, u32)).cast());
        }
    }

    /// Removes `key`. Its place in the age order is dropped lazily, and
    /// the order is compacted when stale places outnumber live ones.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let slot = self.forget(key)?;
        let removed = self.slots[slot].take()?;
        if self.order.len() > 2 * self.cap {
            let mut order = std::mem::take(&mut self.order);
            order.retain(|aged| self.slot_of(&aged.key).is_some());
            self.order = order;
        }
        Some(removed)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.order.iter().filter_map(|aged| {
            let slot = self.slot_of(&aged.key)?;
            Some((&aged.key, self.slots.get(slot)?.as_ref()?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_oldest_and_counts() {
        let mut m = BoundedMap::new(3);
        for i in 0..10u32 {
            *m.entry(i, || 0) += 1;
        }
        assert_eq!(m.len(), 3);
        assert_eq!(m.evicted, 7);
        assert_eq!(m.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![7, 8, 9]);
        *m.entry(8, || 0) += 1;
        assert_eq!(m.get(&8), Some(&2));
    }

    #[test]
    fn freed_slots_are_reused_without_mixing_values() {
        let mut m = BoundedMap::new(3);
        for i in 0..3u32 {
            *m.entry(i, || 0) = i * 10;
        }
        assert_eq!(m.remove(&1), Some(10));
        *m.entry(3, || 0) = 30; // takes the slot 1 had
        *m.entry(4, || 0) = 40; // full: evicts 0 and takes its slot
        assert_eq!(m.slots.len(), 3, "no slot beyond the cap");
        assert_eq!(m.get(&1), None);
        assert_eq!(m.get(&0), None);
        let entries: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(entries, [(2, 20), (3, 30), (4, 40)]);
        assert_eq!(m.evicted, 1);
    }

    #[test]
    fn removing_keeps_the_order_bounded() {
        let mut m = BoundedMap::new(4);
        for i in 0..10_000u32 {
            m.entry(i, || ());
            m.remove(&i);
        }
        assert!(m.order.len() <= 2 * 4 + 1, "{}", m.order.len());
        assert_eq!(m.evicted, 0);
    }

    #[test]
    fn a_reused_slot_is_reset_not_kept() {
        let mut m: BoundedMap<u32, Vec<u32>> = BoundedMap::new(2);
        m.entry_reusing(1, Vec::new, Vec::clear).extend([10, 11]);
        m.entry_reusing(2, Vec::new, Vec::clear).push(20);
        // Full: 1 is evicted and 3 takes its slot, reset.
        let three = m.entry_reusing(3, Vec::new, Vec::clear);
        assert!(three.is_empty(), "{three:?}");
        three.push(30);
        // `entry` writes a value made new, whatever the slot held.
        assert_eq!(m.entry(4, || vec![40]), &vec![40]);
        assert_eq!(m.get(&3), Some(&vec![30]));
        assert_eq!(m.get(&1), None);
        assert_eq!(m.evicted, 2);
        // A key already there keeps its value: neither made nor reset.
        m.entry_reusing(3, || vec![99], Vec::clear).push(31);
        assert_eq!(m.get(&3), Some(&vec![30, 31]));
    }

    /// The map against a plain model (a std HashMap and a list of keys in
    /// insertion order, as the map was before it kept bucket hints), over
    /// random inserts, updates and removes. The small table fills with
    /// tombstones and rehashes in place often, which moves keys away from
    /// their hints, so both ways of finding the oldest are taken.
    #[test]
    fn agrees_with_a_plain_model_through_churn_and_rehashes() {
        use std::collections::HashMap;
        for cap in [1usize, 3, 7, 64] {
            let mut rng = fastrand::Rng::with_seed(cap as u64);
            let mut map: BoundedMap<u16, u64> = BoundedMap::new(cap);
            let mut values: HashMap<u16, u64> = HashMap::new();
            let mut order: VecDeque<u16> = VecDeque::new();
            let mut evicted = 0u64;
            for step in 0..20_000u64 {
                let key = rng.u16(0..(cap as u16) * 4);
                if rng.u8(0..4) == 0 {
                    let expected = values.remove(&key);
                    if expected.is_some() && order.len() > 2 * cap {
                        order.retain(|k| values.contains_key(k));
                    }
                    assert_eq!(map.remove(&key), expected, "remove {key} at step {step}");
                    continue;
                }
                if !values.contains_key(&key) {
                    if values.len() >= cap {
                        while let Some(oldest) = order.pop_front() {
                            if values.remove(&oldest).is_some() {
                                evicted += 1;
                                break;
                            }
                        }
                    }
                    values.insert(key, 0);
                    order.push_back(key);
                }
                *values.get_mut(&key).unwrap() += step;
                let value = match step % 2 {
                    0 => map.entry(key, || 0),
                    _ => map.entry_reusing(key, || 0, |v| *v = 0),
                };
                *value += step;
                assert_eq!(map.get(&key), values.get(&key), "get {key} at step {step}");
            }
            assert_eq!(map.evicted, evicted, "cap {cap}");
            assert_eq!(map.len(), values.len(), "cap {cap}");
            let listed: Vec<_> = map.iter().map(|(k, v)| (*k, *v)).collect();
            let expected: Vec<_> = order.iter().filter_map(|k| Some((*k, *values.get(k)?))).collect();
            assert_eq!(listed, expected, "cap {cap}");
        }
    }
}
