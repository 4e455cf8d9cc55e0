//! The page of a fixture run (rapl, procfs processes, attribution), opened in a real
//! headless browser: Debian's `chromium`, which `.ci/run` installs.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alumet::test_util::skip::should_run;
use alumet::test_util::TempDir;
use alumet_report::{load, render, write_page, Meta};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run/agent.csv")
}

/// `Some(why)` when chromium is not there.
fn missing_chromium() -> Option<String> {
    let found = Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match found {
        Ok(s) if s.success() => None,
        _ => Some("needs Debian's chromium (apt-get install chromium)".into()),
    }
}

/// Runs headless chromium on `page` with `args`; returns its stdout. Killed after 120 s.
/// Its output goes to files (a DOM larger than a pipe's buffer would block it).
fn chromium(dir: &Path, page: &Path, args: &[&str]) -> String {
    let (out_path, err_path) = (dir.join("chromium.out"), dir.join("chromium.err"));
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "chromium: {status:?}\n{stderr}");
    // With --enable-logging, a resource that fails to load or a script error is a
    // CONSOLE line.
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "the page logged errors: {console:?}");
    std::fs::read_to_string(&out_path).unwrap()
}

/// The fixture's figures, computed here from its rows (no quoted field in it).
fn expected_figures() -> BTreeMap<&'static str, f64> {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(';').collect())
        .collect();
    let sum = |pred: &dyn Fn(&[&str]) -> bool| -> f64 {
        rows.iter()
            .filter(|r| pred(r))
            .map(|r| r[2].parse::<f64>().unwrap())
            .sum()
    };
    let package = sum(&|r| r[0] == "rapl_consumed_energy_J" && r[7] == "package");
    let dram = sum(&|r| r[0] == "rapl_consumed_energy_J" && r[7] == "dram");
    let mut resident: BTreeMap<&str, f64> = BTreeMap::new();
    for r in rows.iter().filter(|r| r[0] == "memory_usage_By") {
        *resident.entry(r[1]).or_default() += r[2].parse::<f64>().unwrap();
    }
    let peak = resident.values().fold(0.0_f64, |a, b| a.max(*b)) / 1048576.0;
    BTreeMap::from([
        ("energy, RAPL package 0", package),
        ("energy, RAPL dram 0", dram),
        ("energy, total", package + dram),
        (
            "attributed energy, all consumers",
            sum(&|r| r[0] == "attributed_energy_J"),
        ),
        ("idle energy", sum(&|r| r[0] == "idle_energy_J")),
        (
            "unattributed (untracked) energy",
            sum(&|r| r[0] == "unattributed_energy_J"),
        ),
        (
            "CPU time, processes (user + system)",
            sum(&|r| r[0] == "cpu_time_delta_ms") / 1000.0,
        ),
        ("peak resident memory, processes", peak),
    ])
}

/// The text of every SVG `<text>` element, trimmed.
fn svg_texts(dom: &str) -> Vec<&str> {
    let mut texts = Vec::new();
    let mut rest = dom;
    while let Some(start) = rest.find("<text") {
        let after = &rest[start..];
        let (Some(open), Some(close)) = (after.find('>'), after.find("</text>")) else {
            break;
        };
        texts.push(after[open + 1..close].trim());
        rest = &after[close..];
    }
    texts
}

fn render_fixture(dir: &TempDir) -> PathBuf {
    let input = load(&[fixture()], None).unwrap();
    let meta = Meta {
        command: Some("./bench --size 3".into()),
        host: Some("node-7".into()),
        agent_version: "9.9.9".into(),
        inputs: vec!["agent.csv".into()],
        ..Meta::default()
    };
    let html = render(&input, &meta).unwrap();
    let page = dir.path().join("run.html");
    write_page(&page, &html).unwrap();
    page
}

#[test]
fn the_page_is_self_contained_and_its_dom_in_chromium_has_the_charts_legends_units_and_figures() {
    if !should_run("report page in chromium", missing_chromium()) {
        return;
    }
    let dir = TempDir::new("report-browser-dom");
    let page = render_fixture(&dir);
    let html = std::fs::read_to_string(&page).unwrap();
    for fetch in ["<script", "src=", "href=", "@import", "url(", "<link"] {
        assert!(
            !html.contains(fetch),
            "the page fetches or runs something: {fetch}"
        );
    }
    let dom = chromium(
        dir.path(),
        &page,
        &["--dump-dom", "--enable-logging=stderr"],
    );
    // Parsed to its end.
    assert!(dom.contains("id=\"how\""), "{dom}");
    for chart in ["power", "consumers", "cpu", "memory"] {
        let start = dom
            .find(&format!("<section class=\"chart\" id=\"{chart}\">"))
            .unwrap();
        let end = start + dom[start..].find("</section>").unwrap();
        assert_eq!(
            dom[start..end].matches("<svg").count(),
            1,
            "one svg in {chart}"
        );
    }
    let legends = [
        "RAPL package 0",
        "RAPL dram 0",
        "total",
        "machine (busy states)",
        "processes",
        "machine (total - available)",
        "processes (resident)",
        // The consumers' bars: the top one, the rest, the attribution's parts.
        "process 4000",
        "2 other consumers",
        "idle",
        "unattributed (untracked)",
    ];
    let texts = svg_texts(&dom);
    for legend in legends {
        assert!(texts.contains(&legend), "legend {legend} not in {texts:?}");
    }
    let units = [
        "power (W)",
        "energy (J)",
        "CPU (%, 100 = one CPU)",
        "memory (MiB)",
        "time since the start (s)",
    ];
    for unit in units {
        assert!(texts.contains(&unit), "axis {unit} not in {texts:?}");
    }
    for (name, value) in expected_figures() {
        let cell = format!("<td>{name}</td><td class=\"value\">{value:.3}</td>");
        assert!(dom.contains(&cell), "{cell} not in the figures");
    }
    assert!(dom.contains("node-7") && dom.contains("9.9.9") && dom.contains("./bench --size 3"));
    // The counter and the metrics no chart shows are listed, not dropped.
    assert!(dom.contains("<td>kernel_context_switches_1</td>"));
    assert!(dom.contains("<td>attribution_imbalance_J</td>"));
}

#[test]
fn a_screenshot_of_the_page_in_chromium_is_not_blank() {
    if !should_run("report screenshot in chromium", missing_chromium()) {
        return;
    }
    let dir = TempDir::new("report-browser-png");
    let page = render_fixture(&dir);
    let png_path = dir.path().join("shot.png");
    let shot = format!("--screenshot={}", png_path.display());
    chromium(
        dir.path(),
        &page,
        &[&shot, "--window-size=1200,2000", "--hide-scrollbars"],
    );
    if let Some(keep) = std::env::var_os("REPORT_SCREENSHOT") {
        std::fs::copy(&png_path, keep).unwrap();
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (1200, 2000));
    let channels = info.color_type.samples();
    let luma: Vec<f64> = pixels[..info.buffer_size()]
        .chunks(channels)
        .map(|p| f64::from(p[0]) * 0.3 + f64::from(p[1]) * 0.59 + f64::from(p[2]) * 0.11)
        .collect();
    let mean = luma.iter().sum::<f64>() / luma.len() as f64;
    let variance = luma.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / luma.len() as f64;
    // A white page has variance 0; text, axes and coloured lines and bars give hundreds.
    assert!(
        variance > 100.0,
        "variance {variance} (mean {mean}): a blank page?"
    );
    let mut colors: Vec<&[u8]> = pixels[..info.buffer_size()].chunks(channels).collect();
    colors.sort_unstable();
    colors.dedup();
    assert!(colors.len() > 20, "{} colours", colors.len());
}
