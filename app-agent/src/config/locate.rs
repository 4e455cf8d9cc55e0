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
    /// The plugins named by `--plugins`, which may have no table anywhere.
    plugins_flag: Option<&'a [String]>,
    doc: std::cell::OnceCell<Option<toml_edit::Document<&'a str>>>,
}

impl<'a> Located<'a> {
    /// Will parse `text`, read from `file`, for spans when a line is asked for (a text
    /// that does not parse has no lines to give); `overrides` were applied over it, in
    /// this order; `plugins_flag` is the list of `--plugins`, if given.
    pub fn new(
        text: &'a str,
        file: &'a Path,
        overrides: &'a [Override],
        plugins_flag: Option<&'a [String]>,
    ) -> Self {
        Located {
            text,
            file,
            overrides,
            plugins_flag,
            doc: std::cell::OnceCell::new(),
        }
    }

    /// The 1-based line of the key at `path` (`["plugins", "csv", "output_path"]`), if it
    /// is written in the file. A segment may end with array indices (`groups[0]`, `x[0][1]`,
    /// as in serde's error paths): the line of that element.
    pub fn line_of(&self, path: &[&str]) -> Option<usize> {
        let doc = self
            .doc
            .get_or_init(|| toml_edit::Document::parse(self.text).ok())
            .as_ref()?;
        let mut table: &dyn toml_edit::TableLike = doc.as_table();
        let mut span = None;
        for (i, segment) in path.iter().enumerate() {
            let (key, indices) = split_index(segment);
            let (k, item) = table.get_key_value(key)?;
            span = k.span().or_else(|| item.span());
            let mut inner = item.as_table_like();
            let mut element: Option<&toml_edit::Value> = None;
            for (depth, &index) in indices.iter().enumerate() {
                if depth == 0 && item.is_array_of_tables() {
                    let t = item.as_array_of_tables()?.get(index)?;
                    span = t.span().or(span);
                    inner = Some(t);
                } else {
                    let array = match element {
                        Some(v) => v.as_array()?,
                        None => item.as_array()?,
                    };
                    let v = array.get(index)?;
                    span = v.span().or(span);
                    inner = v.as_inline_table().map(|t| t as &dyn toml_edit::TableLike);
                    element = Some(v);
                }
            }
            if i + 1 < path.len() {
                table = inner?;
            }
        }
        let start = span?.start;
        Some(self.text.get(..start)?.matches('\n').count() + 1)
    }

    /// Where the value at `path` comes from, for a message:
    /// - the flag of the override that set it, or set a table holding it (the last one
    ///   applied);
    /// - else "FILE, line N";
    /// - then, when `path` is a table, the overrides that set keys inside it afterwards
    ///   (the error may concern their values), as "..., or --config-override k=v";
    /// - "--plugins LIST (FILE has no [plugins.NAME] table)" for a plugin that `--plugins`
    ///   enabled without a table;
    /// - "FILE" when nothing else says more.
    ///
    /// A segment may end with array indices (`groups[0]`), as in serde's paths.
    pub fn place(&self, path: &[&str]) -> String {
        let file = self.file.display();
        if path.is_empty() {
            return file.to_string();
        }
        let segments: Vec<&str> = path
            .iter()
            .map(|s| s.split_once('[').map_or(*s, |(name, _)| name))
            .collect();
        // An override whose value a later one replaced (the same key, or a table holding
        // it) has no say.
        let live: Vec<&Override> = self
            .overrides
            .iter()
            .enumerate()
            .filter(|(i, o)| {
                !self.overrides[i + 1..]
                    .iter()
                    .any(|later| is_prefix(&later.key, &o.key))
            })
            .map(|(_, o)| o)
            .collect();
        let setting = live.iter().rev().find(|o| is_prefix(&o.key, &segments));
        // Keys set inside `path` by live overrides (so after whatever set `path`); a
        // plugin's `enable`, `path`, `plugin` and `inputs` are the agent's, not passed to the
        // plugin.
        let plugin_table = segments.len() == 2 && segments[0] == "plugins";
        let inside: Vec<&str> = live
            .iter()
            .filter(|o| o.key.len() > segments.len() && is_prefix(&segments, &o.key))
            .filter(|o| {
                !(plugin_table
                    && o.key.len() == 3
                    && ["enable", "path", "plugin", "inputs"].contains(&o.key[2].as_str()))
            })
            .map(|o| o.flag.as_str())
            .collect();
        let origin = match setting {
            Some(o) => Some(o.flag.clone()),
            None => self.line_of(path).map(|n| format!("{file}, line {n}")),
        };
        match (origin, inside.is_empty()) {
            (Some(origin), true) => origin,
            (Some(origin), false) => format!("{origin}, or {}", inside.join(", or ")),
            (None, false) => inside.join(", or "),
            (None, true) => match (segments.as_slice(), self.plugins_flag) {
                (["plugins", name, ..], Some(list))
                    if list.iter().any(|p| p == name)
                        && self.line_of(&["plugins", name]).is_none() =>
                {
                    format!(
                        "--plugins {} ({file} has no [plugins.{name}] table)",
                        list.join(",")
                    )
                }
                _ => file.to_string(),
            },
        }
    }
}

/// Whether `prefix` is the first segments of `key` (or all of it).
fn is_prefix<A: AsRef<str>, B: AsRef<str>>(prefix: &[A], key: &[B]) -> bool {
    prefix.len() <= key.len()
        && prefix
            .iter()
            .zip(key)
            .all(|(a, b)| a.as_ref() == b.as_ref())
}

/// `groups[0]` -> (`groups`, [0]); `x[0][1]` -> (`x`, [0, 1]); `groups` -> (`groups`, []).
/// A segment whose brackets do not hold indices only is a plain name.
fn split_index(segment: &str) -> (&str, Vec<usize>) {
    let Some((name, mut rest)) = segment.split_once('[') else {
        return (segment, Vec::new());
    };
    let mut indices = Vec::new();
    loop {
        let Some((index, after)) = rest.split_once(']') else {
            return (segment, Vec::new());
        };
        let Ok(index) = index.parse() else {
            return (segment, Vec::new());
        };
        indices.push(index);
        if after.is_empty() {
            return (name, indices);
        }
        let Some(next) = after.strip_prefix('[') else {
            return (segment, Vec::new());
        };
        rest = next;
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
        let l = at(text, &[]);
        assert_eq!(l.line_of(&["a"]), Some(1));
        assert_eq!(l.line_of(&["plugins", "csv"]), Some(3));
        assert_eq!(l.line_of(&["plugins", "csv", "output_path"]), Some(4));
        assert_eq!(l.line_of(&["plugins", "agent", "limits", "max"]), Some(7));
        assert_eq!(l.line_of(&["plugins", "nope"]), None);
        assert_eq!(at("not toml [", &[]).line_of(&["a"]), None);
    }

    #[test]
    fn lines_of_array_elements() {
        let text = "[[groups]]\nname = 'a'\n\n[[groups]]\nname = 'b'\nre = 'x'\n\nlist = [\n  { re = 'y' },\n  { re = 'z' },\n]\n";
        let l = at(text, &[]);
        assert_eq!(l.line_of(&["groups[1]", "re"]), Some(6));
        assert_eq!(l.line_of(&["groups[0]"]), Some(1));
        assert_eq!(l.line_of(&["groups[2]"]), None);
        assert_eq!(l.line_of(&["groups[1]", "list[1]", "re"]), Some(10));
        assert_eq!(l.line_of(&["groups[1]", "list[1]"]), Some(10));
    }

    /// `text` read from c.toml, with `overrides` and no --plugins.
    fn at<'a>(text: &'a str, overrides: &'a [Override]) -> Located<'a> {
        Located::new(text, Path::new("c.toml"), overrides, None)
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
        let l = at(text, &overrides);
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
        // A table holding overrides: its line, and the overrides inside whose value
        // stayed (not the first, which the second replaced).
        assert_eq!(
            l.place(&["plugins", "csv"]),
            "c.toml, line 1, or --output-file b.csv"
        );
        // Neither in the file nor set on the command line.
        assert_eq!(l.place(&["plugins", "rapl"]), "c.toml");
    }

    #[test]
    fn places_follow_the_order_the_overrides_were_applied_in() {
        let text = "[plugins.csv]\noutput_path = 'a.csv'\n\n[plugins.procfs]\n";
        // A table replaced, then a key set inside it: both can be at fault for the table.
        let overrides = [
            flag("plugins.csv", "--config-override table"),
            flag("plugins.csv.output_path", "--output-file b.csv"),
        ];
        let l = at(text, &overrides);
        assert_eq!(
            l.place(&["plugins", "csv"]),
            "--config-override table, or --output-file b.csv"
        );
        assert_eq!(
            l.place(&["plugins", "csv", "output_path"]),
            "--output-file b.csv"
        );
        assert_eq!(
            l.place(&["plugins", "csv", "force_flush"]),
            "--config-override table"
        );
        // A key set, then its table replaced: the first override has no say.
        let overrides = [
            flag("plugins.csv.output_path", "--config-override key"),
            flag("plugins.csv", "--config-override table"),
        ];
        let l = at(text, &overrides);
        assert_eq!(l.place(&["plugins", "csv"]), "--config-override table");
        assert_eq!(
            l.place(&["plugins", "csv", "output_path"]),
            "--config-override table"
        );
        // The agent's own keys of a plugin table are not blamed for the plugin's errors.
        let overrides = [flag("plugins.procfs.enable", "--config-override enable")];
        let l = at(text, &overrides);
        assert_eq!(l.place(&["plugins", "procfs"]), "c.toml, line 4");
    }

    #[test]
    fn places_of_nested_arrays_plugins_without_a_table_and_the_root() {
        let text = "[plugins.procfs.kernel]\nx = [[1], [2,\n  3]]\n";
        let l = at(text, &[]);
        assert_eq!(
            l.line_of(&["plugins", "procfs", "kernel", "x[1][1]"]),
            Some(3)
        );
        assert_eq!(l.line_of(&["plugins", "procfs", "kernel", "x[1][2]"]), None);
        let overrides = [flag("plugins.procfs.kernel.x", "--config-override x")];
        let l = at(text, &overrides);
        assert_eq!(
            l.place(&["plugins", "procfs", "kernel", "x[1][1]"]),
            "--config-override x"
        );
        let list = ["csv".to_owned(), "foo".to_owned()];
        let l = Located::new(text, Path::new("c.toml"), &[], Some(&list));
        assert_eq!(
            l.place(&["plugins", "foo"]),
            "--plugins csv,foo (c.toml has no [plugins.foo] table)"
        );
        assert_eq!(l.place(&["plugins", "procfs"]), "c.toml, line 1");
        // A key absent from a table that is in the file is not blamed on --plugins.
        let list = ["procfs".to_owned()];
        let l = Located::new(text, Path::new("c.toml"), &[], Some(&list));
        assert_eq!(l.place(&["plugins", "procfs", "kernel", "y"]), "c.toml");
        assert_eq!(l.place(&["plugins", "rapl"]), "c.toml");
        assert_eq!(l.place(&[]), "c.toml");
    }

    #[test]
    fn array_indices_in_path_segments() {
        assert_eq!(split_index("groups[0]"), ("groups", vec![0]));
        assert_eq!(split_index("x[0][12]"), ("x", vec![0, 12]));
        assert_eq!(split_index("plain"), ("plain", vec![]));
        for odd in ["a[", "a[x]", "a[0]x", "a[0]]", "a[-1]"] {
            assert_eq!(split_index(odd), (odd, vec![]), "{odd}");
        }
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
