//! Generational storage for connections and sessions: ids stay unique after removal, so a
//! stale id from the host or the application finds nothing instead of a newer occupant.

use std::marker::PhantomData;

use crate::io::{ConnectionId, SessionId};

/// An id an [`Arena`] hands out: index in the low 32 bits, generation in the high 32.
pub(crate) trait Key: Copy {
    fn from_raw(raw: u64) -> Self;
    fn raw(self) -> u64;
}

impl Key for ConnectionId {
    fn from_raw(raw: u64) -> Self {
        ConnectionId(raw)
    }
    fn raw(self) -> u64 {
        self.0
    }
}

impl Key for SessionId {
    fn from_raw(raw: u64) -> Self {
        SessionId(raw)
    }
    fn raw(self) -> u64 {
        self.0
    }
}

/// A slot map keyed by typed ids.
///
/// Values are boxed: a free slot costs a few bytes, so memory returns to the allocator when a
/// burst of connections or sessions ends, instead of staying in a vector sized for the peak.
#[derive(Debug)]
pub(crate) struct Arena<K, T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
    key: PhantomData<K>,
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<Box<T>>,
}

impl<K: Key, T> Arena<K, T> {
    pub(crate) fn new() -> Self {
        Arena {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            key: PhantomData,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `value` under a fresh id.
    pub(crate) fn insert(&mut self, value: T) -> K {
        self.len += 1;
        let raw = if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.value = Some(Box::new(value));
            (u64::from(slot.generation) << 32) | u64::from(index)
        } else {
            let index = self.slots.len() as u32;
            self.slots.push(Slot {
                generation: 1,
                value: Some(Box::new(value)),
            });
            (1u64 << 32) | u64::from(index)
        };
        K::from_raw(raw)
    }

    fn slot(&self, id: K) -> Option<&Slot<T>> {
        let id = id.raw();
        self.slots
            .get((id & 0xffff_ffff) as usize)
            .filter(|s| u64::from(s.generation) == id >> 32)
    }

    pub(crate) fn get(&self, id: K) -> Option<&T> {
        self.slot(id)?.value.as_deref()
    }

    pub(crate) fn contains(&self, id: K) -> bool {
        self.get(id).is_some()
    }

    pub(crate) fn get_mut(&mut self, id: K) -> Option<&mut T> {
        let id = id.raw();
        let slot = self.slots.get_mut((id & 0xffff_ffff) as usize)?;
        if u64::from(slot.generation) != id >> 32 {
            return None;
        }
        slot.value.as_deref_mut()
    }

    pub(crate) fn remove(&mut self, id: K) -> Option<T> {
        let id = id.raw();
        let index = (id & 0xffff_ffff) as usize;
        let slot = self.slots.get_mut(index)?;
        if u64::from(slot.generation) != id >> 32 {
            return None;
        }
        let value = *slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1).max(1);
        self.free.push(index as u32);
        self.len -= 1;
        Some(value)
    }

    /// Every stored value.
    #[cfg(feature = "testing")]
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|s| s.value.as_deref())
    }

    /// Ids of every stored value.
    pub(crate) fn ids(&self) -> Vec<K> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, s)| K::from_raw((u64::from(s.generation) << 32) | i as u64))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_ids_find_nothing() {
        let mut a: Arena<SessionId, &str> = Arena::new();
        let x = a.insert("x");
        assert_eq!(a.get(x), Some(&"x"));
        assert_eq!(a.remove(x), Some("x"));
        let y = a.insert("y");
        assert_ne!(x, y);
        assert_eq!(a.get(x), None);
        assert_eq!(a.remove(x), None);
        assert_eq!(a.get(y), Some(&"y"));
        assert_eq!(a.len(), 1);
        assert_eq!(a.ids(), vec![y]);
    }
}
