//! A plugin running under another name than its own: one instance among several of the
//! same plugin (`[plugins.influx_eu]` with `plugin = "influxdb"` in the agent's config).

use super::{AnyPlugin, Registrar};
use crate::pipeline::PluginControl;

/// A plugin under the name of its instance: its elements are named `INSTANCE/element`,
/// and the pipeline's logs and reports use that name.
pub(crate) struct Instance {
    /// The instance's name.
    pub(crate) name: String,
    /// The plugin.
    pub(crate) plugin: Box<dyn AnyPlugin>,
}

impl AnyPlugin for Instance {
    fn name(&self) -> &str {
        &self.name
    }
    fn plugin_name(&self) -> &str {
        self.plugin.plugin_name()
    }
    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        self.plugin.start(alumet)
    }
    fn post_start(&mut self, control: &PluginControl) -> anyhow::Result<()> {
        self.plugin.post_start(control)
    }
    fn stop(&mut self) -> anyhow::Result<()> {
        self.plugin.stop()
    }
}
