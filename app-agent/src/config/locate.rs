//! Where a key is in the config text (its line), and which valid name is closest to a
//! wrong one: what a config error needs to say what to fix.

use std::path::Path;

/// A config value set on the command line rather than in the file: messages about it
/// name the flag, not a line of the file.
#[derive(Debug, Clone)]
pub struct Override {
    /// The dotted key it sets, split (`["plugins", "csv", "output_path"]`).
    pub key: Vec<String>,
    /// How it was given, as a message shows it (`--config-override k=v`, `--output-file f`).
    pub flag: String,
}

/// Where a config key was written, for messages: its line in the config text (parsed a
/// second time with spans, only when an error needs a line: a config without errors is
/// parsed once, which matters for the start-up time of `exec`), or the command-line flag
/// that set it.
pub struct Located<'a> {
    text: &'a str,
    file: &'a Path,
    overrides: &'a [Override],
    doc: std::cell::OnceCell<Option<toml_edit::Document<&'a str>>>,
}

impl<'a> Located<'a> {
    /// Will parse `text`, read from `file`, for spans when a line is asked for (a text
    /// that does not parse has no lines to give); `overrides` were applied over it.
    pub fn new(text: &'a str, file: &'a Path, overrides: &'a [Override]) -> Self {
        Located {
            text,
            file,
            overrides,
            doc: std::cell::OnceCell::new(),
        }
    }

    /// The 1-based line of the key at `path` (`["plugins", "csv", "output_path"]`), if it
    /// is written in the file. A segment may end with an array index (`groups[0]`, as in
    /// serde's error paths): the line of that element.
    pub fn line_of(&self, path: &[&str]) -> Option<usize> {
        let doc = self
            .doc
            .get_or_init(|| toml_edit::Document::parse(self.text).ok())
            .as_ref()?;
        let mut table: &dyn toml_edit::TableLike = doc.as_table();
        let mut span = None;
        for (i, segment) in path.iter().enumerate() {
            let (key, index) = split_index(segment);
            let (k, item) = table.get_key_value(key)?;
            span = k.span().or_else(|| item.span());
            let mut inner = item.as_table_like();
            if let Some(index) = index {
                if let Some(array) = item.as_array() {
                    let element = array.get(index)?;
                    span = element.span().or(span);
                    inner = element
                        .as_inline_table()
                        .map(|t| t as &dyn toml_edit::TableLike);
                } else {
                    let element = item.as_array_of_tables()?.get(index)?;
                    span = element.span().or(span);
                    inner = Some(element);
                }
            }
            if i + 1 < path.len() {
                table = inner?;
            }
        }
        let start = span?.start;
        Some(self.text.get(..start)?.matches('\n').count() + 1)
    }

    /// Where the value at `path` comes from, for a message: the flag of the override that
    /// set it (or set a table holding it); else "FILE, line N", followed by the overrides
    /// that set keys inside it when `path` is a table (the error may concern their
    /// values). A segment may end with an array index (`groups[0]`), as in serde's paths.
    pub fn place(&self, path: &[&str]) -> String {
        let segments: Vec<&str> = path.iter().map(|s| split_index(s).0).collect();
        let starts_with = |o: &Override, prefix: &[&str]| {
            o.key.len() >= prefix.len() && o.key.iter().zip(prefix).all(|(a, b)| a == b)
        };
        // The last override applied wins: its value replaced the others'.
        let setting =
            self.overrides.iter().rev().find(|o| {
                o.key.len() <= segments.len() && starts_with(o, &segments[..o.key.len()])
            });
        if let Some(o) = setting {
            return o.flag.clone();
        }
        let inside: Vec<&str> = self
            .overrides
            .iter()
            .filter(|o| starts_with(o, &segments))
            .map(|o| o.flag.as_str())
            .collect();
        let file = self.file.display();
        match (self.line_of(path), inside.is_empty()) {
            (Some(n), true) => format!("{file}, line {n}"),
            (Some(n), false) => format!("{file}, line {n}, or {}", inside.join(", or ")),
            (None, false) => inside.join(", or "),
            (None, true) => file.to_string(),
        }
    }
}

/// `groups[0]` -> (`groups`, Some(0)); `groups` -> (`groups`, None).
fn split_index(segment: &str) -> (&str, Option<usize>) {
    match segment.strip_suffix(']').and_then(|s| s.split_once('[')) {
        Some((name, index)) => match index.parse() {
            Ok(i) => (name, Some(i)),
            Err(_) => (segment, None),
        },
        None => (segment, None),
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
        let l = Located::new(text, Path::new("c.toml"), &[]);
        assert_eq!(l.line_of(&["a"]), Some(1));
        assert_eq!(l.line_of(&["plugins", "csv"]), Some(3));
        assert_eq!(l.line_of(&["plugins", "csv", "output_path"]), Some(4));
        assert_eq!(l.line_of(&["plugins", "agent", "limits", "max"]), Some(7));
        assert_eq!(l.line_of(&["plugins", "nope"]), None);
        assert_eq!(
            Located::new("not toml [", Path::new("c.toml"), &[]).line_of(&["a"]),
            None
        );
    }

    #[test]
    fn lines_of_array_elements() {
        let text = "[[groups]]\nname = 'a'\n\n[[groups]]\nname = 'b'\nre = 'x'\n\nlist = [\n  { re = 'y' },\n  { re = 'z' },\n]\n";
        let l = Located::new(text, Path::new("c.toml"), &[]);
        assert_eq!(l.line_of(&["groups[1]", "re"]), Some(6));
        assert_eq!(l.line_of(&["groups[0]"]), Some(1));
        assert_eq!(l.line_of(&["groups[2]"]), None);
        assert_eq!(l.line_of(&["groups[1]", "list[1]", "re"]), Some(10));
        assert_eq!(l.line_of(&["groups[1]", "list[1]"]), Some(10));
    }

    fn flag(key: &str, flag: &str) -> Override {
        Override {
            key: key.split('.').map(str::to_owned).collect(),
            flag: flag.to_owned(),
        }
    }

    #[test]
    fn places_name_the_override_that_set_a_value() {
        let text = "[plugins.csv]\noutput_path = 'a.csv'\nforce_flush = true\n";
        let overrides = [
            flag("plugins.csv.output_path", "--config-override first"),
            flag("plugins.csv.output_path", "--output-file b.csv"),
            flag("plugins.procfs", "--config-override table"),
        ];
        let l = Located::new(text, Path::new("c.toml"), &overrides);
        // The last override applied set the value.
        assert_eq!(
            l.place(&["plugins", "csv", "output_path"]),
            "--output-file b.csv"
        );
        // A key under an overridden table; an array index does not hide it.
        assert_eq!(
            l.place(&["plugins", "procfs", "groups[0]", "re"]),
            "--config-override table"
        );
        // A key of the file beside an override.
        assert_eq!(
            l.place(&["plugins", "csv", "force_flush"]),
            "c.toml, line 3"
        );
        // A table holding overrides: its line, and the overrides inside.
        assert_eq!(
            l.place(&["plugins", "csv"]),
            "c.toml, line 1, or --config-override first, or --output-file b.csv"
        );
        // Neither in the file nor set on the command line.
        assert_eq!(l.place(&["plugins", "rapl"]), "c.toml");
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
