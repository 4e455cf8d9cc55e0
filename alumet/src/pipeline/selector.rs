//! Selectors name sources (or other elements) by `plugin/name`, with `*` wildcards.

use std::fmt;

/// The full name of a pipeline element: the plugin that registered it and its own name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ElementName {
    /// The plugin's name.
    pub plugin: String,
    /// The element's name, unique within its plugin and kind.
    pub element: String,
}

impl ElementName {
    /// A name from its two parts.
    pub fn new(plugin: impl Into<String>, element: impl Into<String>) -> Self {
        ElementName {
            plugin: plugin.into(),
            element: element.into(),
        }
    }
}

impl fmt::Display for ElementName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.plugin, self.element)
    }
}

/// Selects elements by name: `plugin/name`, where either part may hold `*` wildcards
/// (`*` matches any run of characters). `*` alone, or a plugin alone (`rapl`), select
/// every element (of that plugin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    plugin: String,
    element: String,
}

impl Selector {
    /// Parses a selector; this never fails: a selector without `/` selects a whole plugin.
    pub fn new(pattern: &str) -> Self {
        match pattern.split_once('/') {
            Some((plugin, element)) => Selector {
                plugin: plugin.to_owned(),
                element: element.to_owned(),
            },
            None => Selector {
                plugin: pattern.to_owned(),
                element: "*".to_owned(),
            },
        }
    }

    /// Whether the selector matches this element.
    pub fn matches(&self, name: &ElementName) -> bool {
        glob_match(&self.plugin, &name.plugin) && glob_match(&self.element, &name.element)
    }
}

impl From<&str> for Selector {
    fn from(pattern: &str) -> Self {
        Selector::new(pattern)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.plugin, self.element)
    }
}

/// Matches `text` against `pattern`, where `*` matches any run of characters.
fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: exact match.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("rapl", "rapl"));
        assert!(!glob_match("rapl", "rapl2"));
        assert!(glob_match("proc*", "procfs"));
        assert!(glob_match("*fs", "procfs"));
        assert!(glob_match("p*c*s", "procfs"));
        assert!(!glob_match("p*x*s", "procfs"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("a*a", "aa"));
    }

    #[test]
    fn selectors() {
        let name = ElementName::new("procfs", "kernel");
        assert!(Selector::new("*").matches(&name));
        assert!(Selector::new("procfs").matches(&name));
        assert!(Selector::new("procfs/*").matches(&name));
        assert!(Selector::new("*/kernel").matches(&name));
        assert!(Selector::new("procfs/ker*").matches(&name));
        assert!(!Selector::new("procfs/memory").matches(&name));
        assert!(!Selector::new("rapl").matches(&name));
        assert_eq!(Selector::new("rapl").to_string(), "rapl/*");
    }
}
