//! The plugin registration (`app-agent/src/plugins.rs`) is the one place that lists the
//! plugins: everything else that lists them is derived from it or checked against it here.
//!
//! - the plugin lists of `README.md` and `docs/README.md` are generated from it (run
//!   `plugins::UPDATE_DOCS` to rewrite them), each plugin's summary taken from the title of
//!   its own README (`# plugin-NAME: summary`);
//! - the config reference (`docs/user/config.md`) shows every registered plugin's table;
//! - every `plugin-*` crate of the workspace is registered and a dependency of the agent;
//! - no test hard-codes the list (`run.rs` derives it from `plugins::all()`);
//! - the docs an author reads name the command that rewrites the generated parts.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use alumet::plugin::Plugin;
use alumet_agent::plugins::{self, Entry, Role, UPDATE_DOCS};
use alumet_agent::self_plugin::AgentPlugin;

/// The plugin that lives in the agent itself (no crate, no README of its own).
const AGENT_SUMMARY: &str =
    "the agent's own metrics (written, dropped, lost per output; CPU time, memory)";

/// The lines around a generated list in a markdown page.
const BEGIN: &str =
    "<!-- plugins: generated from app-agent/src/plugins.rs, see tests/registration.rs -->\n";
const END: &str = "<!-- end of plugins -->";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether the entry is the agent's own plugin, the only one without a crate.
fn is_agent(entry: &Entry) -> bool {
    entry.meta.name == AgentPlugin::name()
}

/// The summary of a plugin: the title of its README after `# plugin-NAME: `.
fn summary(entry: &Entry) -> String {
    if is_agent(entry) {
        return AGENT_SUMMARY.to_owned();
    }
    let name = entry.meta.name;
    let readme = read(&format!("plugin-{name}/README.md"));
    let title = readme.lines().next().unwrap_or_default();
    let prefix = format!("# plugin-{name}: ");
    match title.strip_prefix(&prefix) {
        Some(summary) if !summary.trim().is_empty() => summary.trim().to_owned(),
        _ => panic!(
            "plugin-{name}/README.md must start with `{prefix}<what it does>`, not {title:?}"
        ),
    }
}

fn role(entry: &Entry) -> &'static str {
    match entry.role {
        Role::Source => "source",
        Role::Transform => "transform",
        Role::Output => "output",
    }
}

/// The markdown list of the registered plugins, linking each README from a page in
/// `dir_to_root` (`""` for the root, `"../"` for `docs/`).
fn plugin_list(dir_to_root: &str) -> String {
    let mut list = String::new();
    for entry in plugins::all() {
        let name = entry.meta.name;
        let (link, role) = if is_agent(&entry) {
            (
                format!("`{name}`"),
                format!("{}, built into the agent", role(&entry)),
            )
        } else {
            let link = format!("[`{name}`]({dir_to_root}plugin-{name}/README.md)");
            (link, role(&entry).to_owned())
        };
        list.push_str(&format!("- {link} ({role}): {}\n", summary(&entry)));
    }
    list
}

/// Checks the generated list of `page`; rewrites it under `UPDATE_DOCS`.
fn check_list(page: &str, dir_to_root: &str) {
    let text = read(page);
    let start = text
        .find(BEGIN)
        .unwrap_or_else(|| panic!("{page} has no line {BEGIN:?} before its plugin list"))
        + BEGIN.len();
    let end = start
        + text[start..]
            .find(END)
            .unwrap_or_else(|| panic!("{page} has no line {END:?} after its plugin list"));
    let expected = plugin_list(dir_to_root);
    if text[start..end] == expected {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let rewritten = format!("{}{expected}{}", &text[..start], &text[end..]);
        std::fs::write(root().join(page), rewritten).unwrap();
    } else {
        panic!(
            "the plugin list of {page} differs from app-agent/src/plugins.rs: run `{UPDATE_DOCS}`\n\
             expected:\n{expected}\nfound:\n{}",
            &text[start..end]
        );
    }
}

#[test]
fn readme_lists_every_registered_plugin() {
    check_list("README.md", "");
}

#[test]
fn docs_readme_lists_every_registered_plugin() {
    check_list("docs/README.md", "../");
}

#[test]
fn config_reference_shows_every_registered_plugin() {
    let page = read("docs/user/config.md");
    for name in plugins::names(&plugins::all()) {
        assert!(
            page.contains(&format!("\n[plugins.{name}]\n")),
            "docs/user/config.md has no [plugins.{name}]: run `{UPDATE_DOCS}`"
        );
    }
}

/// The `plugin-*` names among `keys`.
fn plugin_crates<'a>(keys: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    keys.filter(|k| k.starts_with("plugin-"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_plugin_crate_is_a_member_a_dependency_of_the_agent_and_registered() {
    let registered: BTreeSet<String> = plugins::all()
        .iter()
        .filter(|e| !is_agent(e))
        .map(|e| format!("plugin-{}", e.meta.name))
        .collect();
    let workspace: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let members = workspace["workspace"]["members"].as_array().unwrap();
    let members = plugin_crates(members.iter().filter_map(|m| m.as_str()));
    let agent: toml::Table = toml::from_str(&read("app-agent/Cargo.toml")).unwrap();
    let dependencies = plugin_crates(
        agent["dependencies"]
            .as_table()
            .unwrap()
            .keys()
            .map(String::as_str),
    );

    let unregistered: Vec<_> = dependencies.difference(&registered).collect();
    assert!(
        unregistered.is_empty(),
        "app-agent depends on {unregistered:?}: add an Entry to app-agent/src/plugins.rs"
    );
    let missing: Vec<_> = registered.difference(&dependencies).collect();
    assert!(
        missing.is_empty(),
        "add {missing:?} to [dependencies] of app-agent/Cargo.toml"
    );
    let not_members: Vec<_> = registered.symmetric_difference(&members).collect();
    assert!(
        not_members.is_empty(),
        "the workspace members (Cargo.toml) and the registered plugins differ: {not_members:?}"
    );
}

#[test]
fn no_test_hard_codes_the_plugin_list() {
    let names = plugins::names(&plugins::all());
    let tests = root().join("app-agent/tests");
    let mut checked = 0;
    for file in std::fs::read_dir(&tests).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("registration.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for pair in names.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            for joined in [format!("{a}\\n{b}"), format!("\"{a}\", \"{b}\"")] {
                assert!(
                    !text.contains(&joined),
                    "{} lists plugins by hand ({joined}): derive the list from plugins::all()",
                    path.display()
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 1, "no test file found in {}", tests.display());
    let run = read("app-agent/tests/run.rs");
    assert!(
        run.contains("plugins::names(&plugins::all())"),
        "run.rs derives `plugins list`'s expected output from the registration"
    );
}

#[test]
fn the_docs_an_author_reads_name_the_update_docs_command() {
    for page in ["docs/developer/write-a-plugin.md", "CONTRIBUTING.md"] {
        assert!(
            read(page).contains(UPDATE_DOCS),
            "{page} does not name `{UPDATE_DOCS}`"
        );
    }
}
