//! Where a key is in the config text (its line), and which valid name is closest to a
//! wrong one: what a config error needs to say what to fix.

use std::path::Path;

/// The config text, parsed a second time with spans to find the line of a key: only when
/// an error needs a line (a config without errors is parsed once, which matters for the
/// start-up time of `exec`).
pub struct Located<'a> {
    text: &'a str,
    doc: std::cell::OnceCell<Option<toml_edit::Document<&'a str>>>,
}

impl<'a> Located<'a> {
    /// Will parse `text` for spans when a line is asked for (a text that does not parse
    /// has no lines to give).
    pub fn new(text: &'a str) -> Self {
        Located {
            text,
            doc: std::cell::OnceCell::new(),
        }
    }

    /// The 1-based line of the key at `path` (`["plugins", "csv", "output_path"]`), if it
    /// is written in the file (a key set by --config-override is not).
    pub fn line_of(&self, path: &[&str]) -> Option<usize> {
        let doc = self
            .doc
            .get_or_init(|| toml_edit::Document::parse(self.text).ok())
            .as_ref()?;
        let mut table: &dyn toml_edit::TableLike = doc.as_table();
        let mut span = None;
        for (i, key) in path.iter().enumerate() {
            let (k, item) = table.get_key_value(key)?;
            span = k.span().or_else(|| item.span());
            if i + 1 < path.len() {
                table = item.as_table_like()?;
            }
        }
        let start = span?.start;
        Some(self.text.get(..start)?.matches('\n').count() + 1)
    }
}

/// "FILE, line N" or "FILE" (when the key is not in the file), for messages.
pub fn place(file: &Path, line: Option<usize>) -> String {
    match line {
        Some(n) => format!("{}, line {n}", file.display()),
        None => format!("{} (or a command-line override)", file.display()),
    }
}

/// The valid name closest to `wrong`, if one is close enough to be a likely typo.
pub fn closest<'a>(wrong: &str, valid: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (wrong.chars().count() / 3).max(2);
    valid
        .into_iter()
        .map(|v| (strsim::levenshtein(wrong, v), v))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

/// " Did you mean `x`?" or nothing.
pub fn suggestion(closest: Option<&str>) -> String {
    closest.map_or_else(String::new, |c| format!(" Did you mean `{c}`?"))
}

/// The field names listed in serde's "unknown field `x`, expected one of `a`, `b`".
pub fn expected_fields(message: &str) -> Vec<&str> {
    let Some((_, expected)) = message.split_once("expected") else {
        return Vec::new();
    };
    expected.split('`').skip(1).step_by(2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_keys_tables_and_inline_tables() {
        let text =
            "a = 1\n\n[plugins.csv]\noutput_path = 'x'\n\n[plugins.agent]\nlimits = { max = 3 }\n";
        let l = Located::new(text);
        assert_eq!(l.line_of(&["a"]), Some(1));
        assert_eq!(l.line_of(&["plugins", "csv"]), Some(3));
        assert_eq!(l.line_of(&["plugins", "csv", "output_path"]), Some(4));
        assert_eq!(l.line_of(&["plugins", "agent", "limits", "max"]), Some(7));
        assert_eq!(l.line_of(&["plugins", "nope"]), None);
        assert_eq!(Located::new("not toml [").line_of(&["a"]), None);
    }

    #[test]
    fn closest_names() {
        let valid = ["poll_interval", "flush_interval", "csv"];
        assert_eq!(closest("pol_interval", valid), Some("poll_interval"));
        assert_eq!(closest("flush_intervall", valid), Some("flush_interval"));
        assert_eq!(closest("cvs", valid), Some("csv"));
        assert_eq!(closest("something_else", valid), None);
        assert_eq!(suggestion(Some("csv")), " Did you mean `csv`?");
    }

    #[test]
    fn serde_expected_lists() {
        let m = "unknown field `pol_interval`, expected one of `poll_interval`, `flush_interval`";
        assert_eq!(expected_fields(m), vec!["poll_interval", "flush_interval"]);
        assert_eq!(
            expected_fields("unknown field `maxi`, expected `max`"),
            vec!["max"]
        );
        assert!(expected_fields("invalid type").is_empty());
    }
}
