//! procfs plugin (work in progress).
