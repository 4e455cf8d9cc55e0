//! CSV output (work in progress).
