//! Generational storage for connections and sessions: ids stay unique after removal, so a
//! stale id from the adapter or the application finds nothing instead of a newer occupant.

/// A slot map keyed by `u64` ids (index in the low 32 bits, generation in the high 32).
///
/// Values are boxed: a free slot costs a few bytes, so memory returns to the allocator when a
/// burst of connections or sessions ends, instead of staying in a vector sized for the peak.
#[derive(Debug)]
pub(crate) struct Arena<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<Box<T>>,
}

impl<T> Arena<T> {
    pub(crate) fn new() -> Self {
        Arena {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Stores `value` under a fresh id.
    pub(crate) fn insert(&mut self, value: T) -> u64 {
        self.len += 1;
        if let Some(index) = self.free.pop() {
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
        }
    }

    fn slot(&self, id: u64) -> Option<&Slot<T>> {
        self.slots
            .get((id & 0xffff_ffff) as usize)
            .filter(|s| u64::from(s.generation) == id >> 32)
    }

    pub(crate) fn get(&self, id: u64) -> Option<&T> {
        self.slot(id)?.value.as_deref()
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        let slot = self.slots.get_mut((id & 0xffff_ffff) as usize)?;
        if u64::from(slot.generation) != id >> 32 {
            return None;
        }
        slot.value.as_deref_mut()
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<T> {
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

    /// Ids of every stored value.
    pub(crate) fn ids(&self) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, s)| (u64::from(s.generation) << 32) | i as u64)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_ids_find_nothing() {
        let mut a = Arena::new();
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
