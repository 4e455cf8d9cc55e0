//! The standard agent, `alumet-agent`: its command line, config file, plugin list and
//! modes. The binary (`main.rs`) only dispatches; everything else is here so that tests can
//! drive it in-process.

pub mod cli;
pub mod config;
pub mod exec;
pub mod plugins;
pub mod run;
pub mod self_plugin;
