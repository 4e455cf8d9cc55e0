//! Dynamic plugins for alumet: plugins loaded from shared libraries at run time, through
//! a versioned C ABI.
//!
//! - [`abi`]: the ABI as Rust types, the same as the C header `include/alumet.h`.
//! - [`sdk`]: write a plugin in Rust, with no `unsafe` code: implement [`sdk::Plugin`],
//!   [`sdk::Source`] and [`sdk::Output`], then call [`export_plugin!`] in a `cdylib` crate
//!   that depends on this one with `default-features = false`.
//! - `host` (feature `host`, on by default): the agent's side, which loads a library,
//!   checks its ABI version and runs its plugin in an alumet pipeline.
//!
//! The rules (ownership, threads, strings) and a walkthrough for C and Rust are in
//! `docs/developer/dynamic-plugins.md`.
#![deny(missing_docs)]

pub mod abi;
#[cfg(feature = "host")]
pub mod host;
pub mod sdk;
