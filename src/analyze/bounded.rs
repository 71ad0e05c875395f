//! A map with a cap: inserting past it evicts the oldest entry, and counts it.
//! Keeps every analysis table's memory bounded whatever the traffic.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Keys come from the network, so the hasher must resist crafted collisions
/// (randomly keyed), and be fast: ahash rather than std's SipHash.
type Hasher = ahash::RandomState;

/// Entries reserved at creation, at most (a huge --max-entries grows as used).
const PREALLOCATE_MAX: usize = 1 << 16;

/// The values live in `slots`, apart from the hash table, which holds only
/// each key's slot number. The analysis's values are hundreds of bytes; in
/// the table itself they made it megabytes, so that under churn every probe
/// missed the cache (perf: a fifth of the ldm-only run in `entry`).
#[derive(Debug)]
pub struct BoundedMap<K, V> {
    slot_of: HashMap<K, u32, Hasher>,
    /// Values by slot; `None` for a slot freed by `remove`, until reused.
    slots: Vec<Option<V>>,
    free: Vec<u32>,
    /// Keys in insertion order: the front is the oldest.
    order: VecDeque<K>,
    cap: usize,
    pub evicted: u64,
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
            slot_of: HashMap::with_capacity_and_hasher(reserve, Hasher::new()),
            slots: Vec::with_capacity(cap.min(PREALLOCATE_MAX)),
            free: Vec::new(),
            order: VecDeque::with_capacity(reserve),
            cap,
            evicted: 0,
        }
    }

    /// The value of `key`, looked up by any borrowed form of it (a `&[u8]`
    /// for a `Vec<u8>` key, with no allocation).
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let slot = *self.slot_of.get(key)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    pub fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let slot = *self.slot_of.get(key)?;
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// The entry for `key`, made with `make` (evicting the oldest entry if
    /// the map is full) when there is none.
    pub fn entry(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        if let Some(&slot) = self.slot_of.get(&key) {
            return self.slots[slot as usize].get_or_insert_with(make);
        }
        if self.slot_of.len() >= self.cap {
            self.evict_oldest();
        }
        let slot = self.free_slot();
        self.slot_of.insert(key.clone(), slot);
        self.order.push_back(key);
        self.slots[slot as usize].insert(make())
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
            let Some(slot) = self.forget(&oldest) else { continue };
            // Dropped where it lies: moving it out first copied hundreds
            // of bytes per eviction.
            self.slots[slot] = None;
            self.evicted += 1;
            return;
        }
    }

    /// Forgets `key` and frees its slot, whose value the caller takes or drops.
    fn forget(&mut self, key: &K) -> Option<usize> {
        let slot = self.slot_of.remove(key)?;
        self.free.push(slot);
        Some(slot as usize)
    }

    /// Removes `key`. Its place in the age order is dropped lazily, and
    /// the order is compacted when stale places outnumber live ones.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let slot = self.forget(key)?;
        let removed = self.slots[slot].take()?;
        if self.order.len() > 2 * self.cap {
            let slot_of = &self.slot_of;
            self.order.retain(|k| slot_of.contains_key(k));
        }
        Some(removed)
    }

    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// Entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.order.iter().filter_map(|k| {
            let slot = *self.slot_of.get(k)?;
            Some((k, self.slots.get(slot as usize)?.as_ref()?))
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
}
