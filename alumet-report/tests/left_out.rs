//! A file with rows the report cannot use and metrics it does not know: the page is drawn
//! from the rest and says what it left out.
#![allow(clippy::unwrap_used)]

use alumet::test_util::TempDir;
use alumet_report::{load, render, Meta};

#[test]
fn a_cut_file_with_unknown_metrics_gives_a_page_that_says_what_it_left_out() {
    let dir = TempDir::new("report-left-out");
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run/agent.csv"),
    )
    .unwrap();
    let mut text = fixture.clone();
    // A plugin's metric the report does not know, a value that is not a number, and the
    // last line cut short by a full disk.
    text.push_str("fan_speed_Hz;2026-11-26T06:25:59.250000000Z;42.5;fan;1;local_machine;;;;;;;\n");
    text.push_str("fan_speed_Hz;2026-11-26T06:25:59.250000000Z;fast;fan;2;local_machine;;;;;;;\n");
    text.push_str("rapl_consumed_energy_J;2026-11-26T06:25:5");
    let path = dir.path().join("cut.csv");
    std::fs::write(&path, &text).unwrap();
    let lines = fixture.lines().count() as u64;
    let html = render(&load(&[path], None).unwrap(), &Meta::default()).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        4,
        "the charts are still drawn"
    );
    let cut = format!(
        "<li>1 rows with missing columns (a file cut short?) (the first at line {})</li>",
        lines + 3
    );
    assert!(html.contains(&cut), "{cut} not in the page");
    let nan = format!(
        "<li>1 rows whose value is not a number (the first at line {})</li>",
        lines + 2
    );
    assert!(html.contains(&nan), "{nan} not in the page");
    let unknown =
        "<tr><td>fan_speed_Hz</td><td class=\"value\">1</td><td class=\"value\">42.500</td></tr>";
    assert!(html.contains(unknown), "the unknown metric is not listed");
}
