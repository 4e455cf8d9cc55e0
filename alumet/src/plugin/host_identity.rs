//! [`HostIdentity`]: the labels that say which machine a point comes from (its hostname,
//! and labels from the agent's `[labels]` table), set once by the agent and added to every
//! point by every network output, each in its protocol's way.

use std::collections::BTreeMap;

/// The label that holds the hostname.
pub const HOST_LABEL: &str = "host";

/// Labels naming the measured machine, sorted by name, each name once.
///
/// The pipeline hands them to every plugin through
/// [`Registrar::host_identity`](super::Registrar::host_identity). Network outputs add them
/// to every point they send (InfluxDB tags, Prometheus labels, OpenTelemetry resource
/// attributes, `host` becoming `host.name`); local outputs (CSV, stdout) do not. Empty by
/// default: the agent sets them from its config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostIdentity {
    labels: Vec<(String, String)>,
}

impl HostIdentity {
    /// These labels (a name given twice keeps its last value).
    pub fn new(labels: impl IntoIterator<Item = (String, String)>) -> Self {
        let map: BTreeMap<String, String> = labels.into_iter().collect();
        HostIdentity {
            labels: map.into_iter().collect(),
        }
    }

    /// `labels`, plus [`HOST_LABEL`] = this machine's hostname unless `labels` sets it
    /// (a `host` set to the empty string leaves the label out).
    pub fn with_hostname(labels: &BTreeMap<String, String>) -> Self {
        let mut all = labels.clone();
        if !all.contains_key(HOST_LABEL) {
            if let Some(name) = local_hostname() {
                all.insert(HOST_LABEL.to_owned(), name);
            }
        }
        all.retain(|_, v| !v.is_empty());
        HostIdentity::new(all)
    }

    /// The labels, sorted by name.
    pub fn labels(&self) -> &[(String, String)] {
        &self.labels
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.labels[i].1.as_str())
    }

    /// The hostname label, if any.
    pub fn hostname(&self) -> Option<&str> {
        self.get(HOST_LABEL)
    }

    /// Whether there is no label.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// This machine's hostname (`gethostname`), if it has a readable one.
pub fn local_hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = std::str::from_utf8(&buf[..end]).ok()?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn labels_are_sorted_and_unique() {
        let id = HostIdentity::new([
            ("zone".to_owned(), "b".to_owned()),
            ("cluster".to_owned(), "x".to_owned()),
            ("zone".to_owned(), "c".to_owned()),
        ]);
        let names: Vec<&str> = id.labels().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["cluster", "zone"]);
        assert_eq!((id.get("zone"), id.get("nope")), (Some("c"), None));
    }

    #[test]
    fn the_hostname_is_added_unless_set() {
        let id = HostIdentity::with_hostname(&map(&[("cluster", "a")]));
        assert_eq!(id.hostname(), local_hostname().as_deref());
        assert!(id.hostname().is_some_and(|h| !h.is_empty()));
        let id = HostIdentity::with_hostname(&map(&[("host", "web-1")]));
        assert_eq!(id.hostname(), Some("web-1"));
        let id = HostIdentity::with_hostname(&map(&[("host", ""), ("dc", "eu")]));
        assert_eq!(id.labels(), &[("dc".to_owned(), "eu".to_owned())]);
    }
}
