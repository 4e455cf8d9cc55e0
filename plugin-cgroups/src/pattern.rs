//! Path patterns of `include` and `exclude`: `*` matches any run of characters within one
//! segment, `?` one character, `**` (a whole segment) any number of segments, none
//! included. A pattern is matched against the whole path (`/system.slice/nginx.service`).
//!
//! Written here rather than taken from `globset`: cgroup paths need these three rules only,
//! and `globset` brings the `regex` engine and a newer minimum Rust than the workspace's.

use std::fmt;

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    /// `**`: any number of segments.
    Any,
    /// A segment with `*` and `?` wildcards.
    Glob(Vec<u8>),
}

/// A compiled path pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct PathPattern {
    text: String,
    segments: Vec<Segment>,
}

impl PathPattern {
    /// Compiles `text`; an error says what is wrong with it.
    pub fn new(text: &str) -> Result<Self, String> {
        if !text.starts_with('/') && !text.starts_with("**") {
            return Err(format!(
                "a pattern starts with `/` (a path from the hierarchy's root) or `**` (anywhere): write \"/{text}\" or \"**/{text}\""
            ));
        }
        let mut segments = Vec::new();
        for s in text.split('/').filter(|s| !s.is_empty()) {
            if s == "**" {
                if segments.last() != Some(&Segment::Any) {
                    segments.push(Segment::Any);
                }
            } else if s.contains("**") {
                return Err(format!(
                    "`**` must be a whole segment (`/**/`), not part of `{s}`: use `*` within a segment"
                ));
            } else {
                segments.push(Segment::Glob(s.as_bytes().to_vec()));
            }
        }
        Ok(PathPattern {
            text: text.to_owned(),
            segments,
        })
    }

    /// Whether `path` (`/a/b`, or `/` for the root) matches.
    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<&[u8]> = (path.split('/').filter(|s| !s.is_empty()))
            .map(str::as_bytes)
            .collect();
        match_segments(&self.segments, &parts)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn match_segments(pattern: &[Segment], parts: &[&[u8]]) -> bool {
    match pattern.split_first() {
        None => parts.is_empty(),
        Some((Segment::Any, rest)) => (0..=parts.len()).any(|i| match_segments(rest, &parts[i..])),
        Some((Segment::Glob(g), rest)) => match parts.split_first() {
            Some((first, tail)) => match_glob(g, first) && match_segments(rest, tail),
            None => false,
        },
    }
}

/// `*` and `?` within one segment (iterative, with one backtrack point).
fn match_glob(glob: &[u8], text: &[u8]) -> bool {
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some(b'*') => {
                star = Some((g, t));
                g += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match star {
                Some((sg, st)) => {
                    g = sg + 1;
                    t = st + 1;
                    star = Some((sg, st + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == b'*')
}

/// Whether `path` is measured: matched by an `include` and by no `exclude`.
pub fn selected(path: &str, include: &[PathPattern], exclude: &[PathPattern]) -> bool {
    include.iter().any(|p| p.matches(path)) && !exclude.iter().any(|p| p.matches(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        PathPattern::new(pattern).unwrap().matches(path)
    }

    #[test]
    fn star_stays_within_a_segment() {
        assert!(m("/system.slice/*.service", "/system.slice/nginx.service"));
        assert!(!m("/system.slice/*.service", "/system.slice/a/b.service"));
        assert!(!m("/system.slice/*.service", "/system.slice/nginx.scope"));
        assert!(!m("/system.slice/*.service", "/system.slice"));
        assert!(m("/a/?b", "/a/xb"));
        assert!(!m("/a/?b", "/a/b"));
        assert!(m("/a/*x*y", "/a/1x2x3y"));
        assert!(!m("/a/*x*y", "/a/1x2x3"));
    }

    #[test]
    fn double_star_spans_any_number_of_segments() {
        let p = "**/kubepods/*/pod*";
        assert!(m(p, "/kubepods/burstable/pod12"));
        assert!(m(p, "/docker/abc/kubepods/burstable/pod12"));
        assert!(!m(p, "/kubepods/burstable/pod12/c1"));
        assert!(m("/**", "/"));
        assert!(m("/**", "/a/b/c"));
        assert!(m("/a/**/z", "/a/z"));
        assert!(m("/a/**/z", "/a/b/c/z"));
        assert!(!m("/a/**/z", "/b/z"));
    }

    #[test]
    fn default_patterns_pick_workloads_not_their_parents() {
        let (inc, exc) = crate::config::Config::default().patterns().unwrap();
        let yes = [
            "/system.slice/nginx.service",
            "/user.slice/user-1000.slice",
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice",
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice/cri-containerd-ab.scope",
            "/kubepods.slice/kubepods-pod1_2.slice",
            "/kubepods/burstable/pod1-2/abc",
            "/kubepods/pod1-2",
            "/system.slice/docker-abc.scope",
            "/docker/abc",
            "/machine.slice/libpod-abc.scope",
            "/system.slice/slurmstepd.scope/job_12/step_0",
            "/slurm/uid_1000/job_12",
            "/oar/alice_42",
        ];
        for path in yes {
            assert!(selected(path, &inc, &exc), "{path} should be measured");
        }
        let no = [
            "/",
            "/system.slice",
            "/kubepods.slice",
            "/kubepods.slice/kubepods-burstable.slice",
            "/kubepods/burstable",
            "/system.slice/slurmstepd.scope",
            "/init.scope",
            "/oar",
        ];
        for path in no {
            assert!(!selected(path, &inc, &exc), "{path} should not be measured");
        }
    }

    #[test]
    fn bad_patterns_say_how_to_write_them() {
        let e = PathPattern::new("system.slice/*").unwrap_err();
        assert!(e.contains("\"/system.slice/*\""), "{e}");
        let e = PathPattern::new("/a/b**").unwrap_err();
        assert!(e.contains("whole segment"), "{e}");
    }

    #[test]
    fn exclude_wins() {
        let inc = [PathPattern::new("/**").unwrap()];
        let exc = [PathPattern::new("**/init.scope").unwrap()];
        assert!(selected("/a", &inc, &exc));
        assert!(!selected("/init.scope", &inc, &exc));
    }
}
