//! The agent's side: load a plugin library, check it, and run its plugin in a pipeline.
//!
//! ```no_run
//! # fn main() -> Result<(), alumet_dynamic::host::LoadError> {
//! use alumet_dynamic::host::PluginLibrary;
//!
//! let library = PluginLibrary::open("/usr/lib/alumet/plugins/libwattmeter.so".as_ref())?;
//! let plugin = library.init("wattmeter", "port = \"/dev/ttyUSB0\"\n")?;
//! // `plugin` is an `alumet::plugin::AnyPlugin`: give it to the PipelineBuilder.
//! # Ok(()) }
//! ```

mod callbacks;
mod convert;
mod elements;
mod library;
mod plugin;
mod scope;

pub use library::{LoadError, PluginLibrary};
pub use plugin::DynamicPlugin;
