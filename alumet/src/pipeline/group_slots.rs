//! The sources a group's thread owns: a dense list, polled in order each tick (the hot
//! path is a plain slice), and an index from [`SourceId`] to its place in the list, so
//! that a command for one source finds it in O(1).

use std::ops::{Deref, DerefMut};

use super::registry::SourceId;
use super::slot::SourceSlot;

/// No source of this group has the id's index.
const NONE: u32 = u32::MAX;

#[derive(Default)]
pub(crate) struct GroupSlots {
    list: Vec<SourceSlot>,
    /// By `SourceId::index`: the place in `list` (`NONE` if not in this group). The slot
    /// found there is checked to have the same id, generation included.
    at: Vec<u32>,
}

impl GroupSlots {
    pub(crate) fn new(slots: Vec<SourceSlot>) -> Self {
        let mut group = GroupSlots::default();
        for slot in slots {
            group.push(slot);
        }
        group
    }

    pub(crate) fn push(&mut self, slot: SourceSlot) {
        let index = slot.id.index as usize;
        if self.at.len() <= index {
            self.at.resize(index + 1, NONE);
        }
        self.at[index] = self.list.len() as u32;
        self.list.push(slot);
    }

    fn place(&self, id: SourceId) -> Option<usize> {
        let place = *self.at.get(id.index as usize)? as usize;
        (self.list.get(place)?.id == id).then_some(place)
    }

    /// The source with this id, if it is in this group.
    pub(crate) fn get_mut(&mut self, id: SourceId) -> Option<&mut SourceSlot> {
        let place = self.place(id)?;
        self.list.get_mut(place)
    }

    /// Takes the source with this id out of the group; the last source takes its place.
    pub(crate) fn remove(&mut self, id: SourceId) -> Option<SourceSlot> {
        let place = self.place(id)?;
        self.at[id.index as usize] = NONE;
        let slot = self.list.swap_remove(place);
        if let Some(moved) = self.list.get(place) {
            self.at[moved.id.index as usize] = place as u32;
        }
        Some(slot)
    }

    /// Keeps the sources for which `keep` is true (for a selector: it visits every source).
    pub(crate) fn retain_mut(&mut self, mut keep: impl FnMut(&mut SourceSlot) -> bool) {
        self.list.retain_mut(|s| keep(s));
        self.at.fill(NONE);
        for (place, slot) in self.list.iter().enumerate() {
            self.at[slot.id.index as usize] = place as u32;
        }
    }
}

impl Deref for GroupSlots {
    type Target = [SourceSlot];

    fn deref(&self) -> &[SourceSlot] {
        &self.list
    }
}

impl DerefMut for GroupSlots {
    fn deref_mut(&mut self) -> &mut [SourceSlot] {
        &mut self.list
    }
}
