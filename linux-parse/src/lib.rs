//! Pure parsers of the Linux kernel's text files: bytes in, values out, no I/O (except
//! [`read::read_whole`], which reads such a file whole into a reused buffer).
//!
//! One place for what several crates read: `/proc/PID/stat` is read by the procfs plugin
//! (CPU time and memory of processes), the NVIDIA plugin (process trees) and the agent's
//! exec and watch modes (the identity and state of the watched process). The parsers never
//! panic on any input (property-tested in `tests/fuzz_proc.rs`; golden files of several kernels in `tests/proc.rs`).
#![deny(missing_docs)]

pub mod proc;
pub mod read;
