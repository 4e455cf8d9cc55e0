//! Adding and removing transforms and outputs while running, by read-copy-update of the
//! [`DispatchSet`]: a change copies the set, changes the copy, and publishes it with one
//! atomic swap; the flushing threads never wait for it. A removed element is finished or
//! closed only once no thread uses the set it was in (a *grace period*), so that no point
//! is handed to it after it is done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::measurement::MeasurementBuffer;

use super::dispatch::{push_all, DispatchSet, Dispatcher, TransformSlot};
use super::output::{OutputSlot, OutputStats};
use super::selector::ElementName;

/// Why a transform or an output cannot be added (or removed).
pub(crate) enum AddError {
    Duplicate(ElementName),
    Closed,
}

/// What [`Dispatcher::remove_plugin`] removed.
#[derive(Default)]
pub(crate) struct RemovedElements {
    pub(crate) transforms: Vec<ElementName>,
    /// The removed outputs' final figures (written + dropped + lost = given).
    pub(crate) outputs: Vec<OutputStats>,
}

impl Dispatcher {
    /// Appends a transform: it runs after the others, from the next dispatch.
    pub(crate) fn add_transform(&self, slot: Arc<TransformSlot>) -> Result<(), AddError> {
        self.change(&slot.name, |set| set.transforms.push(slot.clone()))
    }

    /// Adds an output: it receives the buffers dispatched from now on.
    pub(crate) fn add_output(&self, slot: Arc<OutputSlot>) -> Result<(), AddError> {
        self.change(&slot.name, |set| set.outputs.push(slot.clone()))
    }

    fn change(
        &self,
        name: &ElementName,
        edit: impl FnOnce(&mut DispatchSet),
    ) -> Result<(), AddError> {
        let changes = self.changes();
        if changes.closed {
            return Err(AddError::Closed);
        }
        let old = self.current();
        let taken = old.transforms.iter().any(|t| t.name == *name)
            || old.outputs.iter().any(|o| o.name == *name);
        if taken {
            return Err(AddError::Duplicate(name.clone()));
        }
        let mut new = copy(&old);
        drop(old);
        edit(&mut new);
        self.publish(new, Instant::now() + GRACE_LIMIT);
        drop(changes);
        Ok(())
    }

    /// Removes every transform and output of plugin `plugin`: first the transforms, each
    /// after its `finish` (whose points go on through the later transforms to the outputs,
    /// the plugin's included); then the outputs, closed: each drains its queue and
    /// finishes, until `deadline`, when what it has not written is abandoned (counted
    /// lost). Waits for both. Refused once the shutdown has taken the set.
    pub(crate) fn remove_plugin(
        &self,
        plugin: &str,
        deadline: Instant,
    ) -> Result<RemovedElements, AddError> {
        let mut changes = self.change_plugin(plugin, deadline, "removing")?;
        let mut removed = RemovedElements::default();
        let theirs = |name: &ElementName| name.plugin == plugin;
        let edit = |set: &mut DispatchSet| {
            let before = set.transforms.len();
            set.transforms.retain(|t| !theirs(&t.name));
            set.transforms.len() != before
        };
        if let Some(old) = self.replace_if(edit, deadline) {
            removed.transforms = self.finish_removed(&old.transforms, plugin);
        }
        let edit = |set: &mut DispatchSet| {
            let before = set.outputs.len();
            set.outputs.retain(|o| !theirs(&o.name));
            set.outputs.len() != before
        };
        if let Some(old) = self.replace_if(edit, deadline) {
            removed.outputs = retire(&mut changes, &old, plugin, deadline);
        }
        Ok(removed)
    }

    /// Replaces the transforms and outputs of plugin `plugin` by `transforms` and
    /// `outputs` (those of its new instance) in one publication, so that every buffer
    /// reaches either an old output or a new one: the new transforms take the place of the
    /// old ones in the chain; the old transforms are finished (their points go on to the
    /// new outputs), then the old outputs drain their queues and finish, until `deadline`.
    /// The new outputs' workers are not started here: start them once the old ones are
    /// done (a file they share is closed by then). Refused once the shutdown has taken
    /// the set.
    pub(crate) fn replace_plugin(
        &self,
        plugin: &str,
        transforms: Vec<Arc<TransformSlot>>,
        outputs: Vec<Arc<OutputSlot>>,
        deadline: Instant,
    ) -> Result<RemovedElements, AddError> {
        let mut changes = self.change_plugin(plugin, deadline, "replacing")?;
        let theirs = |name: &ElementName| name.plugin == plugin;
        let mut new = copy(&self.current());
        let at = new
            .transforms
            .iter()
            .position(|t| theirs(&t.name))
            .unwrap_or(new.transforms.len());
        new.transforms.retain(|t| !theirs(&t.name));
        new.transforms.splice(at..at, transforms);
        let at = new
            .outputs
            .iter()
            .position(|o| theirs(&o.name))
            .unwrap_or(new.outputs.len());
        new.outputs.retain(|o| !theirs(&o.name));
        new.outputs.splice(at..at, outputs);
        let old = self.publish(new, deadline);
        Ok(RemovedElements {
            transforms: self.finish_removed(&old.transforms, plugin),
            outputs: retire(&mut changes, &old, plugin, deadline),
        })
    }

    /// Begins a change of plugin `plugin`'s elements (`doing`: for the log): refused once
    /// the shutdown has taken the set; what its sources flushed before their removal goes
    /// through the transforms and reaches the outputs first (until `deadline`).
    fn change_plugin(
        &self,
        plugin: &str,
        deadline: Instant,
        doing: &str,
    ) -> Result<std::sync::MutexGuard<'_, super::dispatch::Changes>, AddError> {
        let changes = self.changes();
        if changes.closed {
            return Err(AddError::Closed);
        }
        if !self.stage.sync(deadline) {
            log::warn!(
                "the transforms had not caught up with their queue at the deadline; \
                 {doing} plugin {plugin} anyway"
            );
        }
        Ok(changes)
    }

    /// Publishes a copy of the current set edited by `edit`, if `edit` says it changed it;
    /// returns the set it replaced, unused by then (see [`Dispatcher::publish`]).
    fn replace_if(
        &self,
        edit: impl FnOnce(&mut DispatchSet) -> bool,
        deadline: Instant,
    ) -> Option<Arc<DispatchSet>> {
        let mut new = copy(&self.current());
        edit(&mut new).then(|| self.publish(new, deadline))
    }

    /// Finishes the transforms of `plugin` (no longer in the set) in the order of `old`,
    /// passing their points through the transforms after them, then to the current outputs.
    fn finish_removed(&self, old: &[Arc<TransformSlot>], plugin: &str) -> Vec<ElementName> {
        let mut names = Vec::new();
        let mut buffer = MeasurementBuffer::new();
        let first = old.iter().position(|t| t.name.plugin == plugin);
        for slot in &old[first.unwrap_or(old.len())..] {
            if slot.name.plugin == plugin {
                slot.finish(&mut buffer, &self.ctx);
                names.push(slot.name.clone());
            } else if !buffer.is_empty() {
                slot.apply(&mut buffer, &self.ctx);
            }
        }
        push_all(&self.current().outputs, buffer);
        names
    }

    /// Publishes `new` and waits until no thread uses the set it replaces (or `deadline`
    /// passes: logged); returns that set. Called with `changes` locked, so that every older
    /// set is unused already.
    fn publish(&self, new: DispatchSet, deadline: Instant) -> Arc<DispatchSet> {
        let old = self.set.swap(Arc::new(new));
        // `swap` turns every reader's borrowed reference to `old` into a counted one, so
        // the count says how many dispatches still use it (a dispatch holds it for its
        // transforms and pushes, not longer).
        while Arc::strong_count(&old) > 1 {
            if Instant::now() >= deadline {
                log::warn!(
                    "a dispatch (a slow transform?) still used the previous set of \
                     transforms and outputs at the deadline; the change applies anyway"
                );
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        old
    }
}

/// How long adding an element waits for the dispatches using the previous set.
const GRACE_LIMIT: Duration = Duration::from_secs(5);

fn copy(set: &DispatchSet) -> DispatchSet {
    DispatchSet {
        transforms: set.transforms.clone(),
        outputs: set.outputs.clone(),
    }
}

/// Closes plugin `plugin`'s outputs of the set `old` (no longer published) and keeps
/// them among the retired ones; their final figures.
fn retire(
    changes: &mut super::dispatch::Changes,
    old: &DispatchSet,
    plugin: &str,
    deadline: Instant,
) -> Vec<OutputStats> {
    let gone: Vec<_> = old
        .outputs
        .iter()
        .filter(|o| o.name.plugin == plugin)
        .cloned()
        .collect();
    let stats = close_all(&gone, deadline);
    changes.retired.extend(gone);
    stats
}

/// Closes the outputs (they drain their queues and finish) and waits for them until
/// `deadline`; abandons those not done then. Returns their final figures.
fn close_all(outputs: &[Arc<OutputSlot>], deadline: Instant) -> Vec<OutputStats> {
    for output in outputs {
        output.close();
    }
    for output in outputs {
        if !output.wait_done(deadline) {
            let lost = output.abandon();
            log::error!(
                "output {} did not finish in time after its plugin was removed: {lost} \
                 points were not delivered",
                output.name
            );
        }
    }
    outputs.iter().map(|o| o.stats()).collect()
}
