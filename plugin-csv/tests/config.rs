//! The `[plugins.csv]` table: defaults, documentation, and errors that name the key.
#![allow(clippy::unwrap_used)]

use alumet::plugin::{PluginInitError, PluginMetadata};
use plugin_csv::CsvPlugin;

fn init(text: &str) -> Result<(), PluginInitError> {
    let table: toml::Table = text.parse().unwrap();
    PluginMetadata::of::<CsvPlugin>().init(table).map(|_| ())
}

#[test]
fn an_unknown_key_is_an_error_naming_it() {
    let err = init("outptu_path = 'x.csv'").unwrap_err();
    assert!(matches!(err, PluginInitError::Config(_)), "{err}");
    let message = err.to_string();
    assert!(message.contains("`outptu_path`"), "{message}");
    assert!(message.contains("output_path"), "{message}");
}

#[test]
fn a_delimiter_longer_than_one_character_is_an_error_naming_the_key() {
    for bad in ["';;'", "''"] {
        let err = init(&format!("csv_delimiter = {bad}")).unwrap_err();
        let PluginInitError::Config(config) = &err else {
            panic!("not a config error: {err}");
        };
        assert_eq!(config.key, "csv_delimiter", "{err}");
        assert!(err.to_string().contains("csv_delimiter"), "{err}");
    }
}

#[test]
fn a_delimiter_that_breaks_rows_is_an_error_naming_the_key() {
    for (text, key) in [
        ("csv_delimiter = '\"'", "csv_delimiter"),
        ("csv_delimiter = '.'", "csv_delimiter"),
        ("csv_late_delimiter = '='", "csv_late_delimiter"),
        ("csv_delimiter = \"\\u0000\"", "csv_delimiter"),
        ("csv_delimiter = \"\\u001b\"", "csv_delimiter"),
        ("csv_late_delimiter = \"\\r\"", "csv_late_delimiter"),
        ("output_path = ''", "output_path"),
    ] {
        let err = init(text).unwrap_err();
        assert!(matches!(err, PluginInitError::Init { .. }), "{err}");
        assert!(err.to_string().contains(key), "{text}: {err}");
    }
}

#[test]
fn missing_keys_take_their_default_and_init_opens_nothing() {
    let dir = alumet::test_util::TempDir::new("csv-init");
    let path = dir.path().join("never-created.csv");
    init(&format!(
        "output_path = {:?}\ncsv_delimiter = \"\\t\"",
        path.display().to_string()
    ))
    .unwrap();
    assert!(!path.exists(), "init must not create the file");
    init("").unwrap();
}

#[test]
fn the_default_config_has_every_key_and_each_is_documented() {
    let meta = PluginMetadata::of::<CsvPlugin>();
    let expected = toml::toml! {
        output_path = "alumet-output.csv"
        force_flush = true
        append_unit_to_metric_name = true
        use_unit_display_name = true
        csv_delimiter = ";"
        csv_late_delimiter = ","
    };
    assert_eq!(meta.default_config().unwrap(), expected);
    let schema = meta.config_schema();
    let properties = schema["properties"].as_object().unwrap();
    // And the public Alumet agent's csv_escaped_quote, absent by default.
    assert_eq!(properties.len(), expected.len() + 1);
    assert!(properties.contains_key("csv_escaped_quote"));
    for (key, property) in properties {
        let doc = property["description"].as_str().unwrap_or_default();
        assert!(!doc.is_empty(), "{key} has no description");
    }
}

#[test]
fn the_public_alumet_csv_escaped_quote_is_accepted_only_as_rfc_4180_doubling() {
    init("csv_escaped_quote = '\"\"'").unwrap();
    let err = init("csv_escaped_quote = '\\\"'").unwrap_err().to_string();
    assert!(
        err.contains("csv_escaped_quote") && err.contains("RFC 4180"),
        "{err}"
    );
}
