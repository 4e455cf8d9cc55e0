//! `${VAR}` in config strings, replaced by environment variables.
//!
//! Substitution happens on parsed string values, never on the text: whatever a variable
//! holds stays inside its string and can never add keys or tables.

/// A `${VAR}` whose variable is not set, or a malformed reference.
#[derive(Debug, PartialEq, Eq)]
pub struct EnvError {
    /// The dotted key of the string.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Replaces `${VAR}` in every string of `table` (recursively), reading variables with `get`.
pub fn substitute(
    table: &mut toml::Table,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(), EnvError> {
    walk_table(table, get)
}

impl EnvError {
    /// The error with its key put under `head` (a key, or an array index `[i]`): the dotted
    /// key is built on the way back up, only when there is an error.
    fn under(mut self, head: &str) -> Self {
        self.key = if self.key.is_empty() || self.key.starts_with('[') {
            format!("{head}{}", self.key)
        } else {
            format!("{head}.{}", self.key)
        };
        self
    }
}

fn walk_table(
    table: &mut toml::Table,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(), EnvError> {
    for (k, v) in table.iter_mut() {
        walk_value(v, get).map_err(|e| e.under(k))?;
    }
    Ok(())
}

fn walk_value(
    value: &mut toml::Value,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(), EnvError> {
    match value {
        toml::Value::String(s) if s.contains("${") => {
            *s = expand(s, get).map_err(|message| EnvError {
                key: String::new(),
                message,
            })?;
        }
        toml::Value::Table(t) => walk_table(t, get)?,
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk_value(item, get).map_err(|e| e.under(&format!("[{i}]")))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Expands the `${VAR}` references of one string.
fn expand(s: &str, get: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("`${{` without a closing `}}` in {s:?}"))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "invalid environment variable name {name:?} in {s:?}"
            ));
        }
        let value = get(name).ok_or_else(|| {
            format!(
                "environment variable `{name}` is not set: set it, or write the value in the file"
            )
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cr3t".into()),
            "EVIL" => Some("x\"\n[plugins.evil]\nenable = true".into()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_in_nested_strings_only() {
        let mut t: toml::Table = toml::from_str(
            "a = 'Bearer ${TOKEN}'\nn = 3\n[p.q]\nlist = ['${TOKEN}-1', 'plain']\ninj = '${EVIL}'",
        )
        .unwrap();
        substitute(&mut t, &env).unwrap();
        assert_eq!(t["a"].as_str(), Some("Bearer s3cr3t"));
        assert_eq!(t["p"]["q"]["list"][0].as_str(), Some("s3cr3t-1"));
        // The variable's content stays one string: no table is added.
        assert_eq!(t["p"]["q"]["inj"].as_str(), env("EVIL").as_deref());
        assert!(t.get("plugins").is_none());
    }

    #[test]
    fn unset_or_malformed_references_name_the_key_and_variable() {
        let mut t: toml::Table = toml::from_str("[p]\ntoken = '${MISSING}'").unwrap();
        let err = substitute(&mut t, &env).unwrap_err();
        assert_eq!(err.key, "p.token");
        assert!(
            err.message.contains("`MISSING` is not set"),
            "{}",
            err.message
        );
        for (text, key) in [
            ("x = '${MISSING}'", "x"),
            ("[p]\nlist = ['${TOKEN}', '${MISSING}']", "p.list[1]"),
            ("[p]\nm = [['a'], ['b', '${MISSING}']]", "p.m[1][1]"),
            (
                "[[p.items]]\nx = 1\n[[p.items]]\nx = '${MISSING}'",
                "p.items[1].x",
            ),
        ] {
            let mut t: toml::Table = toml::from_str(text).unwrap();
            assert_eq!(substitute(&mut t, &env).unwrap_err().key, key, "{text}");
        }
        let mut t: toml::Table = toml::from_str("x = '${OPEN'").unwrap();
        assert!(substitute(&mut t, &env)
            .unwrap_err()
            .message
            .contains("closing"));
        let mut t: toml::Table = toml::from_str("x = '${A B}'").unwrap();
        assert!(substitute(&mut t, &env)
            .unwrap_err()
            .message
            .contains("invalid"));
    }
}
