//! The public Alumet agent's `[plugins.socket-control]` table, accepted as is: it turns the
//! control socket on, its `socket_path` being this agent's general `control_socket`.

use std::path::PathBuf;

use super::locate::Located;
use super::{ConfigError, GeneralConfig};

/// The table's name.
const TABLE: &str = "socket-control";
/// Its default path in the public Alumet agent (relative to the working directory).
const DEFAULT_PATH: &str = "alumet-control.sock";

/// Takes `[plugins.socket-control]` out of `plugins` (it is no plugin here) and sets
/// `general.control_socket` from it, unless it says `enable = false`.
pub(super) fn take(
    plugins: &mut toml::Table,
    general: &mut GeneralConfig,
    located: &Located<'_>,
) -> Result<(), ConfigError> {
    let Some(value) = plugins.remove(TABLE) else {
        return Ok(());
    };
    let place = |key: &[&str]| {
        let mut path = vec!["plugins", TABLE];
        path.extend_from_slice(key);
        located.place(&path)
    };
    let toml::Value::Table(mut table) = value else {
        return Err(ConfigError(format!(
            "{}: `plugins.{TABLE}` must be a table",
            place(&[])
        )));
    };
    // The public Alumet agent's `enabled` means `enable` here too.
    if let Some(v) = table.remove("enabled") {
        if table.contains_key("enable") {
            return Err(ConfigError(format!(
                "{}: [plugins.{TABLE}] has both `enable` and `enabled` (the public Alumet agent's name of it): keep one",
                place(&["enabled"])
            )));
        }
        table.insert("enable".into(), v);
    }
    let enabled = match table.remove("enable") {
        None => true,
        Some(toml::Value::Boolean(b)) => b,
        Some(other) => {
            return Err(ConfigError(format!(
                "{}: key `plugins.{TABLE}.enable` must be true or false, not {other}",
                place(&["enable"])
            )))
        }
    };
    let path = match table.remove("socket_path") {
        None => PathBuf::from(DEFAULT_PATH),
        Some(toml::Value::String(s)) if !s.is_empty() => PathBuf::from(s),
        Some(other) => {
            return Err(ConfigError(format!(
                "{}: key `plugins.{TABLE}.socket_path` must be the socket's path, not {other}",
                place(&["socket_path"])
            )))
        }
    };
    if let Some(key) = table.keys().next() {
        return Err(ConfigError(format!(
            "{}: unknown key `{key}` in [plugins.{TABLE}]: its only key is `socket_path` (the general key `control_socket` does the same)",
            place(&[key])
        )));
    }
    if !enabled {
        return Ok(());
    }
    match &general.control_socket {
        Some(set) if *set != path => Err(ConfigError(format!(
            "{}: `socket_path` ({}) and the general `control_socket` ({}) name two sockets: keep one",
            place(&["socket_path"]),
            path.display(),
            set.display()
        ))),
        _ => {
            general.control_socket = Some(path);
            Ok(())
        }
    }
}
