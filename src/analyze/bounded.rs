//! A map with a cap: inserting past it evicts the oldest entry, and counts it.
//! Keeps every analysis table's memory bounded whatever the traffic.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

/// Keys come from the network, so the hasher must resist crafted collisions
/// (randomly keyed), and be fast: ahash rather than std's SipHash.
type Hasher = ahash::RandomState;
use std::hash::Hash;

/// Entries reserved at creation, at most (a huge --max-entries grows as used).
const PREALLOCATE_MAX: usize = 1 << 16;

#[derive(Debug)]
pub struct BoundedMap<K, V> {
    map: HashMap<K, V, Hasher>,
    /// Keys in insertion order: the front is the oldest.
    order: VecDeque<K>,
    cap: usize,
    pub evicted: u64,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    pub fn new(cap: usize) -> BoundedMap<K, V> {
        // Sized up front for twice the cap: hashbrown grows a table whose
        // tombstones (from evictions) fill it unless it is at most half
        // full, and growing copies the table while the old one is still
        // allocated, which showed as the peak of RSS (massif).
        let reserve = cap.saturating_mul(2).clamp(2, PREALLOCATE_MAX);
        BoundedMap {
            map: HashMap::with_capacity_and_hasher(reserve, Hasher::new()),
            order: VecDeque::with_capacity(reserve),
            cap: cap.max(1),
            evicted: 0,
        }
    }

    /// The value of `key`, looked up by any borrowed form of it (a `&[u8]`
    /// for a `Vec<u8>` key, with no allocation).
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.map.get(key)
    }

    pub fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.map.get_mut(key)
    }

    /// The entry for `key`, made with `make` (evicting the oldest entry if
    /// the map is full) when there is none.
    pub fn entry(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        // One hash probe for the common case; a second only when full.
        if self.map.len() >= self.cap && !self.map.contains_key(&key) {
            self.evict_oldest();
        }
        match self.map.entry(key) {
            Entry::Occupied(present) => present.into_mut(),
            Entry::Vacant(absent) => {
                self.order.push_back(absent.key().clone());
                absent.insert(make())
            }
        }
    }

    fn evict_oldest(&mut self) {
        while let Some(oldest) = self.order.pop_front() {
            if self.map.remove(&oldest).is_some() {
                self.evicted += 1;
                return;
            }
        }
    }

    /// Removes `key`. Its place in the age order is dropped lazily, and
    /// the order is compacted when stale places outnumber live ones.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let removed = self.map.remove(key)?;
        if self.order.len() > 2 * self.cap {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
        Some(removed)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.order.iter().filter_map(|k| self.map.get_key_value(k))
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
