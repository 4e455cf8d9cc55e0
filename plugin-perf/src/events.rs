//! Event names, as `perf stat` writes them (`cycles`, `page-faults`, `L1-dcache-load-misses`,
//! `r01c2`, with `:u` or `:k`), or as the public Alumet agent's perf plugin writes them
//! (`REF_CPU_CYCLES`, `PAGE_FAULTS`, `LL_READ_MISS`).

use perf_counter::EventSpec;
use perf_event_open_sys::bindings as b;

/// What an event is, for the summary and for grouping (only hardware counters multiplex).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A generic hardware event, a cache event or a raw one: counted by the PMU.
    Hardware,
    /// A software event: counted by the kernel, never multiplexed.
    Software,
}

/// A parsed event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its name as `perf stat` writes it, with its modifier (`cycles:u`).
    pub name: String,
    /// The metric: `perf_` and the name, `-` and `:` as `_`, lower case (`perf_cycles_u`).
    pub metric: String,
    /// What to open.
    pub spec: EventSpec,
    /// Hardware or software.
    pub kind: Kind,
    /// Its values are nanoseconds (task-clock, cpu-clock), not counts.
    pub nanoseconds: bool,
}

const HARDWARE: [(&str, u32, &str); 13] = [
    ("cycles", b::PERF_COUNT_HW_CPU_CYCLES, "CPU_CYCLES"),
    ("cpu-cycles", b::PERF_COUNT_HW_CPU_CYCLES, ""),
    (
        "instructions",
        b::PERF_COUNT_HW_INSTRUCTIONS,
        "INSTRUCTIONS",
    ),
    (
        "cache-references",
        b::PERF_COUNT_HW_CACHE_REFERENCES,
        "CACHE_REFERENCES",
    ),
    (
        "cache-misses",
        b::PERF_COUNT_HW_CACHE_MISSES,
        "CACHE_MISSES",
    ),
    (
        "branches",
        b::PERF_COUNT_HW_BRANCH_INSTRUCTIONS,
        "BRANCH_INSTRUCTIONS",
    ),
    (
        "branch-instructions",
        b::PERF_COUNT_HW_BRANCH_INSTRUCTIONS,
        "",
    ),
    (
        "branch-misses",
        b::PERF_COUNT_HW_BRANCH_MISSES,
        "BRANCH_MISSES",
    ),
    ("bus-cycles", b::PERF_COUNT_HW_BUS_CYCLES, "BUS_CYCLES"),
    (
        "stalled-cycles-frontend",
        b::PERF_COUNT_HW_STALLED_CYCLES_FRONTEND,
        "STALLED_CYCLES_FRONTEND",
    ),
    (
        "stalled-cycles-backend",
        b::PERF_COUNT_HW_STALLED_CYCLES_BACKEND,
        "STALLED_CYCLES_BACKEND",
    ),
    (
        "ref-cycles",
        b::PERF_COUNT_HW_REF_CPU_CYCLES,
        "REF_CPU_CYCLES",
    ),
    (
        "idle-cycles-frontend",
        b::PERF_COUNT_HW_STALLED_CYCLES_FRONTEND,
        "",
    ),
];

const SOFTWARE: [(&str, u32, &str); 13] = [
    ("cpu-clock", b::PERF_COUNT_SW_CPU_CLOCK, ""),
    ("task-clock", b::PERF_COUNT_SW_TASK_CLOCK, ""),
    ("page-faults", b::PERF_COUNT_SW_PAGE_FAULTS, "PAGE_FAULTS"),
    ("faults", b::PERF_COUNT_SW_PAGE_FAULTS, ""),
    (
        "context-switches",
        b::PERF_COUNT_SW_CONTEXT_SWITCHES,
        "CONTEXT_SWITCHES",
    ),
    ("cs", b::PERF_COUNT_SW_CONTEXT_SWITCHES, ""),
    (
        "cpu-migrations",
        b::PERF_COUNT_SW_CPU_MIGRATIONS,
        "CPU_MIGRATIONS",
    ),
    ("migrations", b::PERF_COUNT_SW_CPU_MIGRATIONS, ""),
    (
        "minor-faults",
        b::PERF_COUNT_SW_PAGE_FAULTS_MIN,
        "PAGE_FAULTS_MIN",
    ),
    (
        "major-faults",
        b::PERF_COUNT_SW_PAGE_FAULTS_MAJ,
        "PAGE_FAULTS_MAJ",
    ),
    (
        "alignment-faults",
        b::PERF_COUNT_SW_ALIGNMENT_FAULTS,
        "ALIGNMENT_FAULTS",
    ),
    (
        "emulation-faults",
        b::PERF_COUNT_SW_EMULATION_FAULTS,
        "EMULATION_FAULTS",
    ),
    (
        "cgroup-switches",
        b::PERF_COUNT_SW_CGROUP_SWITCHES,
        "CGROUP_SWITCHES",
    ),
];

/// The caches of `perf list`'s cache events, with Alumet's names for them.
const CACHES: [(&str, u32, &str); 7] = [
    ("L1-dcache", b::PERF_COUNT_HW_CACHE_L1D, "L1D"),
    ("L1-icache", b::PERF_COUNT_HW_CACHE_L1I, "L1I"),
    ("LLC", b::PERF_COUNT_HW_CACHE_LL, "LL"),
    ("dTLB", b::PERF_COUNT_HW_CACHE_DTLB, "DTLB"),
    ("iTLB", b::PERF_COUNT_HW_CACHE_ITLB, "ITLB"),
    ("branch", b::PERF_COUNT_HW_CACHE_BPU, "BPU"),
    ("node", b::PERF_COUNT_HW_CACHE_NODE, "NODE"),
];

const OPS: [(&str, u32, &str); 3] = [
    ("load", b::PERF_COUNT_HW_CACHE_OP_READ, "READ"),
    ("store", b::PERF_COUNT_HW_CACHE_OP_WRITE, "WRITE"),
    ("prefetch", b::PERF_COUNT_HW_CACHE_OP_PREFETCH, "PREFETCH"),
];

/// `perf stat` writes loads and stores in the plural; misses as `-misses`.
const RESULTS: [(&str, u32, &str); 2] = [
    ("s", b::PERF_COUNT_HW_CACHE_RESULT_ACCESS, "ACCESS"),
    ("-misses", b::PERF_COUNT_HW_CACHE_RESULT_MISS, "MISS"),
];

/// Every name `perf stat` takes that this plugin knows (for suggestions).
pub fn known_names() -> Vec<String> {
    let mut names: Vec<String> = HARDWARE.iter().map(|(n, ..)| (*n).to_owned()).collect();
    names.extend(SOFTWARE.iter().map(|(n, ..)| (*n).to_owned()));
    for (cache, ..) in CACHES {
        for (op, ..) in OPS {
            for (result, ..) in RESULTS {
                names.push(format!("{cache}-{op}{result}"));
            }
        }
    }
    names
}

fn spec(type_: u32, config: u64) -> EventSpec {
    EventSpec {
        type_,
        config,
        user_only: false,
        kernel_only: false,
    }
}

const BAD_MODIFIER: &str = "unknown modifier; `:u` counts user space only, `:k` the kernel only";

/// The event `text` names; an unknown name is an error listing the closest known ones.
pub fn parse(text: &str) -> Result<Event, String> {
    let (base, modifier) = text.rsplit_once(':').unwrap_or((text, ""));
    let known = |c: char| matches!(c, 'u' | 'k');
    if text.contains(':') && (modifier.is_empty() || !modifier.chars().all(known)) {
        return Err(format!("event `{text}`: {BAD_MODIFIER}"));
    }
    let (mut spec, kind, canonical) = base_event(base).ok_or_else(|| unknown(base))?;
    let (user, kernel) = (modifier.contains('u'), modifier.contains('k'));
    if user != kernel {
        spec.user_only = user;
        spec.kernel_only = kernel;
    }
    let name = if spec.user_only || spec.kernel_only {
        format!("{canonical}:{}", if user { "u" } else { "k" })
    } else {
        canonical.clone()
    };
    let metric = format!(
        "perf_{}",
        name.to_ascii_lowercase().replace(['-', ':'], "_")
    );
    let nanoseconds = kind == Kind::Software
        && [b::PERF_COUNT_SW_CPU_CLOCK, b::PERF_COUNT_SW_TASK_CLOCK]
            .iter()
            .any(|c| u64::from(*c) == spec.config);
    Ok(Event {
        name,
        metric,
        spec,
        kind,
        nanoseconds,
    })
}

fn unknown(base: &str) -> String {
    let names = known_names();
    let mut close: Vec<(f64, &String)> = names
        .iter()
        .map(|n| {
            (
                strsim::jaro_winkler(&base.to_ascii_lowercase(), &n.to_ascii_lowercase()),
                n,
            )
        })
        .filter(|(s, _)| *s > 0.8)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let close: Vec<&str> = close.iter().take(3).map(|(_, n)| n.as_str()).collect();
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!(" Did you mean {}?", close.join(", "))
    };
    format!(
        "unknown event `{base}`: give a name as `perf stat -e` takes it (cycles, instructions, task-clock, page-faults, L1-dcache-load-misses, ...; `perf list` shows them), or a raw event rNNNN in hexadecimal.{hint}"
    )
}

/// The spec, kind and `perf stat` name of an event name without modifier.
fn base_event(base: &str) -> Option<(EventSpec, Kind, String)> {
    for (name, config, alumet) in HARDWARE {
        if base == name || (!alumet.is_empty() && base.eq_ignore_ascii_case(alumet)) {
            let canonical = if alumet.is_empty() {
                name
            } else {
                HARDWARE
                    .iter()
                    .find(|h| h.2 == alumet)
                    .map_or(name, |h| h.0)
            };
            return Some((
                spec(b::PERF_TYPE_HARDWARE, u64::from(config)),
                Kind::Hardware,
                canonical.to_owned(),
            ));
        }
    }
    for (name, config, alumet) in SOFTWARE {
        if base == name || (!alumet.is_empty() && base.eq_ignore_ascii_case(alumet)) {
            let canonical = SOFTWARE
                .iter()
                .find(|s| s.1 == config)
                .map_or(name, |s| s.0);
            return Some((
                spec(b::PERF_TYPE_SOFTWARE, u64::from(config)),
                Kind::Software,
                canonical.to_owned(),
            ));
        }
    }
    if let Some(hex) = base.strip_prefix('r') {
        if !hex.is_empty() && hex.len() <= 16 {
            if let Ok(config) = u64::from_str_radix(hex, 16) {
                return Some((
                    spec(b::PERF_TYPE_RAW, config),
                    Kind::Hardware,
                    format!("r{hex}"),
                ));
            }
        }
    }
    cache_event(base)
}

/// `L1-dcache-load-misses` (perf) or `L1D_READ_MISS` (Alumet).
fn cache_event(base: &str) -> Option<(EventSpec, Kind, String)> {
    for (cache, id, alumet_cache) in CACHES {
        for (op, op_id, alumet_op) in OPS {
            for (result, result_id, alumet_result) in RESULTS {
                let perf = format!("{cache}-{op}{result}");
                let alumet = format!("{alumet_cache}_{alumet_op}_{alumet_result}");
                if base == perf || base.eq_ignore_ascii_case(&alumet) {
                    let config =
                        u64::from(id) | (u64::from(op_id) << 8) | (u64::from(result_id) << 16);
                    return Some((spec(b::PERF_TYPE_HW_CACHE, config), Kind::Hardware, perf));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_stat_names_alumet_names_raw_events_and_modifiers() {
        let e = parse("cycles").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (e.metric.as_str(), e.spec.type_, e.spec.config),
            ("perf_cycles", 0, 0)
        );
        assert_eq!(parse("CPU_CYCLES").map(|e| e.name), Ok("cycles".to_owned()));
        assert_eq!(
            parse("REF_CPU_CYCLES").map(|e| e.metric),
            Ok("perf_ref_cycles".to_owned())
        );
        let pf = parse("page-faults").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (pf.metric.as_str(), pf.kind),
            ("perf_page_faults", Kind::Software)
        );
        assert_eq!(
            parse("faults").map(|e| e.name),
            Ok("page-faults".to_owned())
        );
        assert_eq!(
            parse("PAGE_FAULTS_MIN").map(|e| e.name),
            Ok("minor-faults".to_owned())
        );
        assert!(parse("task-clock").is_ok_and(|e| e.nanoseconds));
        let l1 = parse("L1-dcache-load-misses").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((l1.spec.type_, l1.spec.config), (3, 0x10000));
        assert_eq!(l1.metric, "perf_l1_dcache_load_misses");
        assert_eq!(
            parse("LL_READ_MISS").map(|e| e.name),
            Ok("LLC-load-misses".to_owned())
        );
        assert_eq!(parse("LLC-stores").map(|e| e.spec.config), Ok(2 | (1 << 8)));
        let raw = parse("r01c2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (raw.spec.type_, raw.spec.config, raw.metric.as_str()),
            (4, 0x1c2, "perf_r01c2")
        );
        let u = parse("instructions:u").unwrap_or_else(|e| panic!("{e}"));
        assert!(u.spec.user_only && !u.spec.kernel_only);
        assert_eq!(u.metric, "perf_instructions_u");
        let k = parse("cycles:k").unwrap_or_else(|e| panic!("{e}"));
        assert!(k.spec.kernel_only && !k.spec.user_only);
        assert_eq!(parse("cycles:uk").map(|e| e.name), Ok("cycles".to_owned()));
    }

    #[test]
    fn unknown_names_list_the_close_ones() {
        let e = parse("instrucions").unwrap_err();
        assert!(
            e.contains("unknown event `instrucions`") && e.contains("instructions"),
            "{e}"
        );
        assert!(parse("cycles:x").unwrap_err().contains("unknown modifier"));
        assert!(parse("rzz").is_err());
        assert!(parse("L1-dcache-loads-misses")
            .unwrap_err()
            .contains("L1-dcache-load-misses"));
    }
}
