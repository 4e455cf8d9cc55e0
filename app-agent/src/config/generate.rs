//! The default config file: every key with its default value, commented with the doc line
//! of its field; plugins whose hardware is absent here are present but disabled, with why.

use std::fmt::Write as _;

use alumet::plugin::Unavailable;
use serde_json::Value as Json;

use super::GeneralConfig;
use crate::plugins::Entry;

const HEADER: &str = "\
# alumet-agent configuration.
#
# General keys come first, then one [plugins.NAME] table per plugin: a plugin runs when
# its table is present, unless the table says `enable = false`.
# In strings, ${VAR} is replaced by the environment variable VAR (it must be set).
# Durations are written like \"500ms\", \"10s\", \"1m\".
";

/// The `[labels]` table, empty by default: shown commented out, with an example.
const LABELS_EXAMPLE: &str = "\
# Labels that every network output (InfluxDB, OpenTelemetry, Prometheus remote write and
# exporter) adds to every point; `host` is this machine's hostname unless set here.
# [labels]
# cluster = \"a\"
";

/// The default config, probing the plugins that need hardware.
pub fn default_config(entries: &[Entry]) -> String {
    render(entries, &probe)
}

/// Whether a plugin's hardware is present: creates it with its defaults and lets it
/// register into a scratch pipeline, then drops it.
fn probe(entry: &Entry) -> Option<Unavailable> {
    if !entry.needs_hardware {
        return None;
    }
    let table = entry.meta.default_config().ok()?;
    let mut plugin = entry.meta.init(table).ok()?;
    let error = alumet::plugin::probe_start(plugin.as_mut()).err()?;
    Unavailable::find(&error).cloned()
}

/// The default config, with `availability` telling which plugins cannot run here.
pub fn render(entries: &[Entry], availability: &dyn Fn(&Entry) -> Option<Unavailable>) -> String {
    let mut out = String::from(HEADER);
    let general = toml::Table::try_from(GeneralConfig::default()).unwrap_or_default();
    let schema = schemars::schema_for!(GeneralConfig).to_value();
    out.push('\n');
    render_keys(&mut out, &general, &schema, &schema);
    out.push_str(LABELS_EXAMPLE);
    for entry in entries {
        let table = entry.meta.default_config().unwrap_or_default();
        let schema = entry.meta.config_schema();
        let _ = writeln!(out, "\n[plugins.{}]", entry.meta.name);
        if let Some(u) = availability(entry) {
            let _ = writeln!(out, "# Disabled: {}.\n# To use it: {}.", u.reason, u.fix);
            out.push_str("enable = false\n");
        } else if !entry.enabled_by_default {
            out.push_str(
                "# Disabled by default: check its settings below, then set `enable = true`.\n",
            );
            out.push_str("enable = false\n");
        }
        render_table_body(
            &mut out,
            &format!("plugins.{}", entry.meta.name),
            &table,
            &schema,
            &schema,
        );
    }
    out
}

fn render_table_body(
    out: &mut String,
    path: &str,
    table: &toml::Table,
    schema: &Json,
    root: &Json,
) {
    render_keys(out, table, schema, root);
    for (key, value) in table {
        if let toml::Value::Table(sub) = value {
            let sub_schema = property(schema, key, root)
                .map(|p| resolve(p, root))
                .unwrap_or(&Json::Null);
            let sub_path = format!(
                "{path}.{}",
                toml_edit::Key::new(key.as_str()).display_repr()
            );
            let _ = writeln!(
                out,
                "\n{}[{sub_path}]",
                comment(property(schema, key, root))
            );
            render_table_body(out, &sub_path, sub, sub_schema, root);
        }
    }
}

/// `# doc` then `key = value` for every non-table value of `table`.
fn render_keys(out: &mut String, table: &toml::Table, schema: &Json, root: &Json) {
    for (key, value) in table {
        if matches!(value, toml::Value::Table(_)) {
            continue;
        }
        out.push_str(&comment(property(schema, key, root)));
        let _ = writeln!(
            out,
            "{} = {value}",
            toml_edit::Key::new(key.as_str()).display_repr()
        );
    }
}

fn comment(property: Option<&Json>) -> String {
    let doc = property
        .and_then(|p| p.get("description"))
        .and_then(Json::as_str);
    doc.map_or_else(String::new, |d| {
        d.lines().map(|l| format!("# {l}\n")).collect()
    })
}

fn property<'a>(schema: &'a Json, key: &str, root: &'a Json) -> Option<&'a Json> {
    resolve(schema, root).get("properties")?.get(key)
}

/// Follows a `$ref` to `#/$defs/...`.
fn resolve<'a>(schema: &'a Json, root: &'a Json) -> &'a Json {
    match schema
        .get("$ref")
        .and_then(Json::as_str)
        .and_then(|r| r.strip_prefix("#"))
    {
        Some(pointer) => root.pointer(pointer).unwrap_or(schema),
        None => schema,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins;

    #[test]
    fn every_key_is_commented_and_the_text_parses_back_to_the_defaults() {
        let entries = plugins::all();
        let text = render(&entries, &|_| None);
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        for entry in &entries {
            let mut table = parsed["plugins"][entry.meta.name]
                .as_table()
                .unwrap()
                .clone();
            let enable = table
                .remove("enable")
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            assert_eq!(enable, entry.enabled_by_default, "{}", entry.meta.name);
            assert_eq!(
                table,
                entry.meta.default_config().unwrap(),
                "{}",
                entry.meta.name
            );
        }
        assert_eq!(parsed["shutdown_timeout"].as_str(), Some("5s"));
        // Every `key = value` line has a comment line just above it.
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains(" = ") && !line.starts_with('#') && !line.starts_with("enable") {
                assert!(
                    lines[i - 1].starts_with("# "),
                    "no doc comment above {line:?}"
                );
            }
        }
    }

    #[test]
    fn absent_hardware_is_disabled_with_the_reason() {
        let entries = plugins::all();
        let first = entries[0].meta.name;
        let text = render(&entries, &|e| {
            (e.meta.name == first).then(|| Unavailable::new("no widget in /sys", "plug a widget"))
        });
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["plugins"][first]["enable"].as_bool(), Some(false));
        assert!(text.contains(
            "# Disabled: no widget in /sys.\n# To use it: plug a widget.\nenable = false"
        ));
        let others = entries.iter().skip(1);
        for e in others {
            let enable = parsed["plugins"][e.meta.name]
                .get("enable")
                .and_then(|v| v.as_bool());
            assert_eq!(
                enable.unwrap_or(true),
                e.enabled_by_default,
                "{}",
                e.meta.name
            );
        }
    }
}

#[cfg(test)]
mod docs_tests {
    use super::*;
    use crate::plugins;

    /// `docs/user/config.md` shows the default config; it must match the code. Run with
    /// `UPDATE_DOCS=1` to rewrite the page's block from the code.
    #[test]
    fn config_reference_page_matches_the_code() {
        let page = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/user/config.md");
        let text = std::fs::read_to_string(&page).unwrap();
        let start = text.find("```toml\n").unwrap() + "```toml\n".len();
        let generated = render(&plugins::all(), &|_| None);
        let end = text[start..].find("```").map(|e| start + e);
        let shown = end.map(|e| &text[start..e]);
        if shown != Some(generated.as_str()) {
            if std::env::var_os("UPDATE_DOCS").is_some() {
                let rest = end.map_or("\n", |e| &text[e + 3..]);
                std::fs::write(&page, format!("{}{generated}```{rest}", &text[..start])).unwrap();
            } else {
                panic!(
                    "{} is out of date: run `{}`",
                    page.display(),
                    plugins::UPDATE_DOCS
                );
            }
        }
    }
}
