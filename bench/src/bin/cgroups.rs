//! The cost of measuring many cgroups: N cgroups measured by the `cgroups` plugin at 1 Hz
//! into an output that counts the points. Prints the CPU time per cgroup per poll, the
//! share of one core, the allocations per poll once warm, and the resident memory per
//! cgroup; first, the floor: the CPU of only reading the same files at the same rate,
//! without the plugin, and then how far above it the plugin is.
//!
//! `cargo run --release -p bench --bin cgroups -- [N] [SECONDS] [--fixture]` (1000
//! cgroups, 10 s). As root, the cgroups are real: created under `alumet-bench-PID/` in
//! every hierarchy of `/sys/fs/cgroup` (v1 controllers and the v2 tree), and removed at
//! the end. Without root, or with `--fixture`, they are a v2 tree of plain files in a
//! temporary directory (the same code path, reading tmpfs files instead of the kernel's).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use alumet::pipeline::{ElementKind, PipelineBuilder};
use alumet::plugin::PluginMetadata;
use alumet::test_util::cost::{cpu_time, self_status};

#[path = "../shared.rs"]
mod shared;

use shared::{counting_output, ALLOCATIONS};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fixture = args.iter().any(|a| a == "--fixture");
    let mut numbers = args.iter().filter(|a| !a.starts_with("--"));
    let n: usize = numbers.next().map_or(Ok(1000), |a| a.parse())?;
    let secs: u64 = numbers.next().map_or(Ok(10), |a| a.parse())?;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tree = if root && !fixture {
        Tree::real(n)?
    } else {
        Tree::fixture(n)?
    };
    let result = floor(&tree, n, secs).and_then(|floor| measure(&tree, n, secs, floor));
    drop(tree);
    result
}

/// The floor: the CPU time of only reading the files the plugin reads, per cgroup per poll.
/// The same files of the same cgroups, opened once and read from offset 0 as the plugin
/// reads them (one `pread` each into one buffer), at 1 Hz for `secs` rounds, the details (`memory.stat`, the limit, the
/// pressure files) at every 10th round from the first, as the plugin does by default.
fn floor(tree: &Tree, n: usize, secs: u64) -> anyhow::Result<f64> {
    use plugin_cgroups::hierarchy::{detect, locate, CpuFiles, IoFile};
    use std::fs::File;
    let hierarchies = detect(&tree.root)?;
    let (mut each, mut details) = (Vec::new(), Vec::new());
    for i in 0..n {
        let f = locate(&hierarchies, &format!("/{}/c{i}", tree.parent));
        match f.cpu {
            Some(CpuFiles::V1 { usage, stat }) => each.extend([Some(usage), stat]),
            Some(CpuFiles::V2(stat)) => each.push(Some(stat)),
            None => {}
        }
        let io = f.io.map(|io| match io {
            IoFile::V1(p) | IoFile::V2(p) => p,
        });
        each.extend([f.memory, io]);
        details.extend([f.memory_max, f.memory_stat.map(|(_, p)| p)]);
        details.extend(f.pressure.into_iter().map(|(_, p)| Some(p)));
    }
    let open = |paths: Vec<Option<PathBuf>>| -> anyhow::Result<Vec<File>> {
        Ok(paths
            .into_iter()
            .flatten()
            .map(File::open)
            .collect::<Result<_, _>>()?)
    };
    let (each, details) = (open(each)?, open(details)?);
    let mut buf = Vec::new();
    let mut read_all = |files: &[File]| -> anyhow::Result<()> {
        for f in files {
            linux_parse::read::read_whole(f, &mut buf, true)?;
        }
        Ok(())
    };
    // Warm: every file read twice.
    for _ in 0..2 {
        read_all(&each)?;
        read_all(&details)?;
    }
    let mut cpu = Duration::ZERO;
    for round in 0..secs {
        let t0 = thread_cpu();
        read_all(&each)?;
        if round % 10 == 0 {
            read_all(&details)?;
        }
        cpu += thread_cpu() - t0;
        std::thread::sleep(Duration::from_secs(1));
    }
    let per_poll = cpu.as_secs_f64() * 1e6 / (n.max(1) as u64 * secs.max(1)) as f64;
    println!(
        "floor:  {per_poll:.2} us of CPU per cgroup per poll only to read the same files \
         ({} read each poll, {} with the details, one pread each; {:.2}% of one core)",
        each.len(),
        details.len(),
        per_poll * n as f64 / 1e4
    );
    Ok(per_poll)
}

/// The CPU time of the calling thread.
fn thread_cpu() -> Duration {
    // SAFETY: clock_gettime fills the zeroed timespec we own.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and a pointer to our timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn measure(tree: &Tree, n: usize, secs: u64, floor: f64) -> anyhow::Result<()> {
    let table: toml::Table = toml::from_str(&format!(
        "cgroup_root = {:?}\npoll_interval = '1s'\nflush_interval = '1s'\n\
         include = ['/{}/*']\nrescan_interval = '1h'\n",
        tree.root.display().to_string(),
        tree.parent
    ))?;
    let mut builder = PipelineBuilder::new();
    builder.plugin(PluginMetadata::of::<plugin_cgroups::CgroupsPlugin>().init(table)?);
    let written = counting_output(&mut builder);
    let rss0 = self_status("VmRSS")?;
    let mut run = builder.start()?;
    let control = run.control();
    let polls = || -> u64 {
        let stats = control.element_stats();
        let sources = stats.iter().filter(|s| s.kind == ElementKind::Source);
        sources.map(|s| s.polls).sum()
    };
    // Warm: every cgroup found and read, and the details (read every 10 s, with more
    // points) read twice, so that every buffer has grown to its size.
    std::thread::sleep(Duration::from_millis(12_500));
    let sources = control.sources().len();
    // The readings of the figures allocate: the allocations are counted between them.
    let (threads0, polls0, cpu0) = (source_threads_cpu()?, polls(), cpu_time());
    let allocs0 = ALLOCATIONS.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(secs));
    let allocs1 = ALLOCATIONS.load(Ordering::SeqCst);
    let (cpu1, polls1, threads1) = (cpu_time(), polls(), source_threads_cpu()?);
    let rss1 = self_status("VmRSS")?;
    let report = run.shutdown();
    let polled = (polls1 - polls0).max(1);
    let cpu = cpu1 - cpu0;
    let per_poll = cpu.as_secs_f64() * 1e6 / polled as f64;
    let per_second = cpu.as_secs_f64() / secs as f64;
    println!(
        "{} cgroups ({}), {sources} measured, at 1 Hz for {secs} s",
        n, tree.kind
    );
    let on_threads = threads1.saturating_sub(threads0).as_secs_f64() * 1e6 / polled as f64;
    println!(
        "poll:   {per_poll:.2} us of CPU per cgroup per poll, the whole process \
         ({on_threads:.2} us on the source threads alone; the rest is the discovery task \
         and the output) ({polled} polls)"
    );
    println!(
        "share:  {:.2}% of one core (the whole process: polls, the null output, the rest)",
        per_second * 100.0
    );
    println!(
        "above the floor: {:.2} us per cgroup per poll, {:.2}% of one core",
        per_poll - floor,
        (per_poll - floor) * n as f64 / 1e4
    );
    println!(
        "allocs: {:.3} per cgroup poll once warm ({} in all)",
        (allocs1 - allocs0) as f64 / polled as f64,
        allocs1 - allocs0
    );
    println!(
        "rss:    {rss0} kB before, {rss1} kB measuring them: {:.2} kB per cgroup",
        (rss1.saturating_sub(rss0)) as f64 / n.max(1) as f64
    );
    println!(
        "points: {} written, undelivered {}",
        written.load(Ordering::Relaxed),
        report.undelivered_points
    );
    anyhow::ensure!(
        sources >= n,
        "only {sources} of the {n} cgroups were measured"
    );
    Ok(())
}

/// The CPU time of the source threads (`alumet-src-*`), from `/proc/self/task`.
fn source_threads_cpu() -> anyhow::Result<Duration> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task")? {
        let dir = task?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with("alumet-src-") {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat"))?;
        let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime: fields 14 and 15 of stat, 12 and 13 after the `)`.
        for i in [11, 12] {
            ticks += fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(Duration::from_secs_f64(ticks as f64 / hz))
}

/// The cgroups measured: `parent/c0` .. `parent/c{n-1}` under `root`, removed on drop.
struct Tree {
    root: PathBuf,
    parent: String,
    /// The directories created, deepest first at removal.
    created: Vec<PathBuf>,
    kind: &'static str,
    temp: Option<PathBuf>,
}

impl Tree {
    /// Real cgroups, in every hierarchy mounted under `/sys/fs/cgroup`.
    fn real(n: usize) -> anyhow::Result<Self> {
        let root = PathBuf::from("/sys/fs/cgroup");
        let parent = format!("alumet-bench-{}", std::process::id());
        let mut tree = Tree {
            root: root.clone(),
            parent: parent.clone(),
            created: Vec::new(),
            kind: "real",
            temp: None,
        };
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&root)? {
            let dir = entry?.path();
            let Ok(real) = dir.canonicalize() else {
                continue;
            };
            let is_hierarchy = real.join("cgroup.procs").exists();
            if !is_hierarchy || seen.contains(&real) {
                continue;
            }
            tree.create(&real, n)?;
            seen.push(real);
        }
        if seen.is_empty() {
            // A pure v2 host: the root is the hierarchy.
            tree.create(&root, n)?;
        }
        Ok(tree)
    }

    /// `parent/c0` .. `parent/c{n-1}` in the hierarchy at `hierarchy`.
    fn create(&mut self, hierarchy: &Path, n: usize) -> anyhow::Result<()> {
        let top = hierarchy.join(&self.parent);
        std::fs::create_dir(&top)?;
        self.created.push(top.clone());
        for i in 0..n {
            let c = top.join(format!("c{i}"));
            std::fs::create_dir(&c)?;
            self.created.push(c);
        }
        Ok(())
    }

    /// A v2 tree of plain files.
    fn fixture(n: usize) -> anyhow::Result<Self> {
        let temp = std::env::temp_dir().join(format!("alumet-bench-cg-{}", std::process::id()));
        let parent = "bench".to_owned();
        write_v2(&temp, "cpu memory io\n")?;
        let top = temp.join(&parent);
        write_v2(&top, "cpu memory io\n")?;
        for i in 0..n {
            write_v2(&top.join(format!("c{i}")), "")?;
        }
        Ok(Tree {
            root: temp.clone(),
            parent,
            created: Vec::new(),
            kind: "fixture v2 tree",
            temp: Some(temp),
        })
    }
}

/// A v2 cgroup directory with the files the plugin reads.
fn write_v2(dir: &Path, controllers: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let files = [
        ("cgroup.controllers", controllers),
        ("cgroup.procs", ""),
        ("cpu.stat", "usage_usec 1000\nuser_usec 600\nsystem_usec 400\n"),
        ("memory.current", "4096\n"),
        ("memory.max", "max\n"),
        ("memory.stat", "anon 1024\nfile 2048\nkernel_stack 16\npagetables 8\n"),
        ("io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"),
        ("cpu.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=10\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

impl Drop for Tree {
    fn drop(&mut self) {
        for dir in self.created.iter().rev() {
            if let Err(e) = std::fs::remove_dir(dir) {
                eprintln!("could not remove the cgroup {}: {e}", dir.display());
            }
        }
        if let Some(temp) = &self.temp {
            let _ = std::fs::remove_dir_all(temp);
        }
    }
}
