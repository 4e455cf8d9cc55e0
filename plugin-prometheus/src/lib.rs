//! prometheus output (work in progress).
