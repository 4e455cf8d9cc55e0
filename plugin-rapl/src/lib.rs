//! RAPL plugin (work in progress).
