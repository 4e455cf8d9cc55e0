//! stdout output (work in progress).
