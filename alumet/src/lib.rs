//! Core of the alumet measurement agent.
//!
//! Plugins register **sources** (they measure), **transforms** (they change what was
//! measured) and **outputs** (they write it somewhere) into a [`pipeline`]:
//!
//! ```text
//! sources --> transforms (in order) --> one bounded queue per output --> outputs
//! ```
//!
//! A plugin author needs [`prelude`] and nothing else: implement [`Plugin`](plugin::Plugin)
//! (three items: `name`, `init`, `start`), and one of [`Source`](pipeline::Source),
//! [`Transform`](pipeline::Transform) or [`Output`](pipeline::Output), each with one
//! required method. See `docs/developer/` in the repository for a tutorial.
//!
//! The data model lives in [`measurement`] (points, resources, consumers, attributes) and
//! [`metrics`] (named metrics with units and typed ids); [`counter`] turns wrapping
//! hardware counters into exact differences.
#![deny(missing_docs)]

pub mod consumers;
pub mod counter;
pub mod measurement;
pub mod metrics;
pub mod pipeline;
pub mod plugin;
pub mod prelude;
#[cfg(feature = "test-util")]
pub mod test_util;

#[path = "duration.rs"]
pub mod humantime_serde;

/// The tutorial `docs/developer/write-a-plugin.md`, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../docs/developer/write-a-plugin.md")]
pub struct WriteAPluginTutorial;
