//! The delivery engine that every network output of alumet shares (InfluxDB, Prometheus
//! remote write, OpenTelemetry): a bounded buffer that drops the oldest points and counts
//! them, a sender thread that sends batches, retries with exponential backoff and jitter,
//! honours `Retry-After`, splits a batch the server finds too large (413), gives up on
//! other 4xx answers, and stops at the shutdown deadline, reporting exact counts to the
//! pipeline (written, dropped, lost).
//!
//! It lives in a crate of its own, not in the core, because it holds an HTTP client
//! (`ureq`) and the core knows no network client. An output plugin:
//!
//! 1. encodes the points it receives into a [`Batch`] (its own type: lines for InfluxDB,
//!    samples for remote write) and hands it to [`Engine::enqueue`];
//! 2. implements [`Transport`]: send one batch, say what the answer means ([`Outcome`]),
//!    usually through [`http::HttpClient`];
//! 3. calls [`Engine::close_and_wait`] in its output's `finish`, and [`Engine::abort`] in
//!    its plugin's `stop` (after the core's shutdown deadline).

pub mod backoff;
pub mod batch;
mod engine;
pub mod http;
mod plugin;
pub mod prometheus;
mod push;
pub mod reject;
pub mod series;
mod transport;

pub use batch::{Batch, Items};
pub use engine::{Engine, Stats, StatsHandle};
pub use plugin::{PushKind, PushPlugin};
pub use push::{Convert, PushOutput};
pub use reject::RejectLog;
pub use transport::{Outcome, Settings, Transport};
#[cfg(feature = "test-util")]
pub mod test_util;
