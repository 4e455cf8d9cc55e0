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
    /// Whether `plugin` is a plain name, not a pattern (a selector confined to one plugin:
    /// see [`Selector::within`]).
    literal_plugin: bool,
}

/// Why a selector could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector `{pattern}`: {reason} (expected `plugin/source`, `plugin` or `*`, where `*` matches any run of characters)")]
pub struct SelectorError {
    /// The selector as given.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Selector {
    /// Parses `plugin/name`, `plugin` (every element of the plugin) or `*` (everything).
    /// An empty selector or part, a second `/`, or a blank or control character is an
    /// error that says which: such a selector would match nothing.
    pub fn parse(pattern: &str) -> Result<Self, SelectorError> {
        let fail = |reason| {
            Err(SelectorError {
                pattern: pattern.to_owned(),
                reason,
            })
        };
        if pattern.is_empty() {
            return fail("it is empty");
        }
        if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return fail("it holds a blank or control character");
        }
        let (plugin, element) = pattern.split_once('/').unwrap_or((pattern, "*"));
        if element.contains('/') {
            return fail("it holds more than one `/`");
        }
        if plugin.is_empty() {
            return fail("the plugin part, before `/`, is empty");
        }
        if element.is_empty() {
            return fail("the source part, after `/`, is empty (write `plugin/*` or `plugin`)");
        }
        Ok(Selector {
            plugin: plugin.to_owned(),
            element: element.to_owned(),
            literal_plugin: false,
        })
    }

    /// Every element: `*`.
    pub fn all() -> Self {
        Selector {
            plugin: "*".to_owned(),
            element: "*".to_owned(),
            literal_plugin: false,
        }
    }

    /// Every element of plugin `plugin` (an instance's name), taken as a plain name, not
    /// as a pattern.
    pub fn plugin(plugin: &str) -> Self {
        Selector {
            plugin: plugin.to_owned(),
            element: "*".to_owned(),
            literal_plugin: true,
        }
    }

    /// This selector confined to the elements of `plugin`: `None` when its plugin part
    /// cannot match `plugin` (it names other plugins only), otherwise a selector for the
    /// elements of `plugin` that this one matches (`*/kernel` within `procfs` is
    /// `procfs/kernel`).
    pub fn within(&self, plugin: &str) -> Option<Selector> {
        if !self.matches_plugin(plugin) {
            return None;
        }
        Some(Selector {
            plugin: plugin.to_owned(),
            element: self.element.clone(),
            literal_plugin: true,
        })
    }

    fn matches_plugin(&self, plugin: &str) -> bool {
        if self.literal_plugin {
            self.plugin == plugin
        } else {
            glob_match(&self.plugin, plugin)
        }
    }

    /// Whether the selector matches this element.
    pub fn matches(&self, name: &ElementName) -> bool {
        self.matches_plugin(&name.plugin) && glob_match(&self.element, &name.element)
    }
}

impl std::str::FromStr for Selector {
    type Err = SelectorError;

    fn from_str(pattern: &str) -> Result<Self, Self::Err> {
        Selector::parse(pattern)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.plugin, self.element)
    }
}

/// Matches `text` against `pattern`, where `*` matches any run of characters (the
/// selectors' wildcard; plugins use it for their own patterns).
pub fn glob_match(pattern: &str, text: &str) -> bool {
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

    fn sel(pattern: &str) -> Selector {
        Selector::parse(pattern).unwrap()
    }

    #[test]
    fn selectors() {
        let name = ElementName::new("procfs", "kernel");
        assert!(sel("*").matches(&name));
        assert!(sel("procfs").matches(&name));
        assert!(sel("procfs/*").matches(&name));
        assert!(sel("*/kernel").matches(&name));
        assert!(sel("procfs/ker*").matches(&name));
        assert!(!sel("procfs/memory").matches(&name));
        assert!(!sel("rapl").matches(&name));
        assert_eq!(sel("rapl").to_string(), "rapl/*");
    }

    #[test]
    fn a_selector_within_a_plugin_matches_only_its_elements() {
        let kernel = ElementName::new("procfs", "kernel");
        let other = ElementName::new("procfs2", "kernel");
        let within = |p: &str| sel(p).within("procfs");
        assert_eq!(
            within("*/kernel"),
            Some(sel("procfs/kernel").within("procfs").unwrap())
        );
        assert!(within("*").unwrap().matches(&kernel));
        assert!(!within("*").unwrap().matches(&other));
        assert!(!within("proc*").unwrap().matches(&other));
        assert!(!within("procfs/mem*").unwrap().matches(&kernel));
        assert_eq!(within("rapl"), None);
        assert_eq!(within("procfs2/*"), None);
        // A plugin name is not a pattern, even with a `*` in it.
        let star = Selector::plugin("a*");
        assert!(star.matches(&ElementName::new("a*", "x")));
        assert!(!star.matches(&ElementName::new("ab", "x")));
        assert_eq!(star.within("ab"), None);
    }

    #[test]
    fn malformed_selectors_are_errors_that_say_why() {
        let reason = |p: &str| Selector::parse(p).unwrap_err().reason;
        assert!(reason("").contains("empty"));
        assert!(reason("procfs/").contains("source part"));
        assert!(reason("/kernel").contains("plugin part"));
        assert!(reason("a/b/c").contains("more than one `/`"));
        assert!(reason("procfs/ker nel").contains("blank"));
        let message = Selector::parse("a/b/c").unwrap_err().to_string();
        assert!(message.contains("`a/b/c`"), "{message}");
        assert_eq!(Selector::all().to_string(), "*/*");
        assert_eq!("rapl/energy".parse::<Selector>(), Ok(sel("rapl/energy")));
    }
}
