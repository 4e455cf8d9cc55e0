//! Which sources exist (managed and autonomous), known without asking their groups: a slab indexed by
//! [`SourceId`] (add, find and remove in O(1)), and an index of their names (for
//! duplicates and selectors).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::selector::{ElementName, Selector};
use super::sources::GroupShared;
use super::stats::Counters;

/// A managed source, as returned by `add_source`: addresses it in O(1) for as long as it
/// exists. An id is never reused: once its source is removed, calls with it are refused
/// ([`ControlError::NoSuchSource`](super::ControlError::NoSuchSource)), even after another
/// source took its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "source #{}.{}", self.index, self.generation)
    }
}

/// Which sources a control call is for: one by id (the way for a plugin to address its own
/// sources), or those a [`Selector`] matches (the way for people: logs, a control socket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One source, by the id `add_source` returned.
    Id(SourceId),
    /// Every source whose name the selector matches.
    Matching(Selector),
}

impl From<SourceId> for Target {
    fn from(id: SourceId) -> Self {
        Target::Id(id)
    }
}

impl From<Selector> for Target {
    fn from(selector: Selector) -> Self {
        Target::Matching(selector)
    }
}

impl From<&Selector> for Target {
    fn from(selector: &Selector) -> Self {
        Target::Matching(selector.clone())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Id(id) => id.fmt(f),
            Target::Matching(selector) => selector.fmt(f),
        }
    }
}

/// A source, known without asking its group.
pub(crate) struct SourceEntry {
    pub(crate) name: ElementName,
    /// What runs it.
    pub(crate) runner: Runner,
    pub(crate) counters: Arc<Counters>,
}

/// What runs a source.
pub(crate) enum Runner {
    /// A managed source: the group of the poll interval it was added with.
    Group(Arc<GroupShared>),
    /// An autonomous source: its task, stopped through its own shutdown signal.
    Task(tokio::sync::watch::Sender<bool>),
}

impl SourceEntry {
    /// The group of a managed source.
    pub(crate) fn group(&self) -> Option<&Arc<GroupShared>> {
        match &self.runner {
            Runner::Group(g) => Some(g),
            Runner::Task(_) => None,
        }
    }
}

struct Place {
    generation: u32,
    entry: Option<SourceEntry>,
}

/// The managed sources: a slab of places, each with a generation bumped when its source
/// is removed, so that an old id never finds the place's next source.
#[derive(Default)]
pub(crate) struct Registry {
    places: Vec<Place>,
    free: Vec<u32>,
    names: HashMap<ElementName, SourceId>,
}

impl Registry {
    /// The registry of the sources registered before the pipeline started, with the ids
    /// the registrar gave them (`ids_given`: how many it gave; those of sources left out,
    /// such as an unavailable plugin's, stay free and never come back).
    pub(crate) fn with(entries: Vec<(SourceId, SourceEntry)>, ids_given: u32) -> Self {
        let mut places: Vec<Place> = (0..ids_given)
            .map(|_| Place {
                generation: 1,
                entry: None,
            })
            .collect();
        let mut names = HashMap::with_capacity(entries.len());
        for (id, entry) in entries {
            if let Some(place) = places.get_mut(id.index as usize) {
                names.insert(entry.name.clone(), id);
                *place = Place {
                    generation: id.generation,
                    entry: Some(entry),
                };
            }
        }
        let free = (0..ids_given)
            .rev()
            .filter(|&i| places[i as usize].entry.is_none())
            .collect();
        Registry {
            places,
            free,
            names,
        }
    }

    /// The id of the source with this name.
    pub(crate) fn id_of(&self, name: &ElementName) -> Option<SourceId> {
        self.names.get(name).copied()
    }

    /// Adds a source whose name is free; returns its id.
    pub(crate) fn insert(&mut self, entry: SourceEntry) -> SourceId {
        if let Some(group) = entry.group() {
            group.members.fetch_add(1, Ordering::Relaxed);
        }
        let index = self.free.pop().unwrap_or_else(|| {
            self.places.push(Place {
                generation: 0,
                entry: None,
            });
            (self.places.len() - 1) as u32
        });
        let place = &mut self.places[index as usize];
        let id = SourceId {
            index,
            generation: place.generation,
        };
        self.names.insert(entry.name.clone(), id);
        place.entry = Some(entry);
        id
    }

    /// A new place, held empty for a source that a plugin starting while the pipeline
    /// runs registers: [`insert_at`](Self::insert_at) fills it once the plugin started
    /// (the place of a plugin that failed stays empty for good).
    pub(crate) fn reserve(&mut self) -> SourceId {
        self.places.push(Place {
            generation: 0,
            entry: None,
        });
        SourceId {
            index: (self.places.len() - 1) as u32,
            generation: 0,
        }
    }

    /// Fills the place reserved for `id`; `false` if it is not a reserved, empty place.
    pub(crate) fn insert_at(&mut self, id: SourceId, entry: SourceEntry) -> bool {
        let Some(place) = self.places.get_mut(id.index as usize) else {
            return false;
        };
        if place.entry.is_some() || place.generation != id.generation {
            return false;
        }
        if let Some(group) = entry.group() {
            group.members.fetch_add(1, Ordering::Relaxed);
        }
        self.names.insert(entry.name.clone(), id);
        place.entry = Some(entry);
        true
    }

    /// The source with this id, if it still exists.
    pub(crate) fn get(&self, id: SourceId) -> Option<&SourceEntry> {
        let place = self.places.get(id.index as usize)?;
        (place.generation == id.generation)
            .then_some(place.entry.as_ref())
            .flatten()
    }

    /// Removes the source with this id; its name is free again, its id dead for good.
    pub(crate) fn remove(&mut self, id: SourceId) -> Option<SourceEntry> {
        self.get(id)?;
        let place = &mut self.places[id.index as usize];
        let entry = place.entry.take()?;
        place.generation = place.generation.wrapping_add(1);
        // A place whose generations are spent is retired, so that no id ever comes back.
        if place.generation != u32::MAX {
            self.free.push(id.index);
        }
        self.names.remove(&entry.name);
        if let Some(group) = entry.group() {
            group.members.fetch_sub(1, Ordering::Relaxed);
        }
        Some(entry)
    }

    /// The ids of the sources `target` names (without checking that an id exists).
    pub(crate) fn resolve(&self, target: &Target) -> Vec<SourceId> {
        match target {
            Target::Id(id) => vec![*id],
            Target::Matching(selector) => self
                .iter()
                .filter(|(_, e)| selector.matches(&e.name))
                .map(|(id, _)| id)
                .collect(),
        }
    }

    /// Every source, in the order of their places (the order they were added in, until a
    /// removed source's place is taken again).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SourceId, &SourceEntry)> {
        self.places.iter().enumerate().filter_map(|(i, p)| {
            let id = SourceId {
                index: i as u32,
                generation: p.generation,
            };
            p.entry.as_ref().map(|e| (id, e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_not_reused() {
        let group = Arc::new(GroupShared::default());
        let entry = |n: &str| SourceEntry {
            name: ElementName::new("p", n),
            runner: Runner::Group(Arc::clone(&group)),
            counters: Arc::default(),
        };
        let mut registry = Registry::with(Vec::new(), 0);
        let a = registry.insert(entry("a"));
        assert!(registry.remove(a).is_some());
        assert!(registry.remove(a).is_none());
        let b = registry.insert(entry("b"));
        assert_eq!(b.index, a.index);
        assert_ne!(a, b);
        assert!(registry.get(a).is_none());
        assert_eq!(registry.get(b).map(|e| e.name.element.as_str()), Some("b"));
        assert_eq!(registry.id_of(&ElementName::new("p", "b")), Some(b));
        assert_eq!(group.members.load(Ordering::Relaxed), 1);
    }
}
