//! [`RunMode`]: what the agent is measuring, which plugins read in `start`.

/// What the agent runs for: the whole machine until stopped, or one command or process.
///
/// The pipeline hands it to every plugin through
/// [`Registrar::run_mode`](super::Registrar::run_mode). A plugin that measures processes
/// reads it in `start` to follow the processes the agent announces (with
/// [`Event::ConsumerStarted`](crate::pipeline::Event::ConsumerStarted),
/// [`Event::ConsumerWatched`](crate::pipeline::Event::ConsumerWatched) and
/// [`Event::ConsumerEnded`](crate::pipeline::Event::ConsumerEnded)) instead of the
/// processes its config chooses; other plugins ignore it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RunMode {
    /// Measures until stopped (the agent's `run`): plugins do what their config says.
    #[default]
    Run,
    /// Measures one command from its start to its end (the agent's `exec`).
    Exec,
    /// Measures one running process until it exits (the agent's `watch`).
    Watch,
}

impl RunMode {
    /// Whether the agent measures one command or process, which it announces by events
    /// (exec and watch): per-process sources then measure those processes (and their
    /// descendants).
    pub fn follows_announced_processes(self) -> bool {
        matches!(self, RunMode::Exec | RunMode::Watch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_and_watch_follow_announced_processes_run_does_not() {
        assert_eq!(RunMode::default(), RunMode::Run);
        assert!(!RunMode::Run.follows_announced_processes());
        assert!(RunMode::Exec.follows_announced_processes());
        assert!(RunMode::Watch.follows_announced_processes());
    }
}
