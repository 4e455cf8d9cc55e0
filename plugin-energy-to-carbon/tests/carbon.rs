//! Exact grams for known energies and intensities, through the plugin in a pipeline.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use alumet::plugin::PluginInitError;
use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin};
use plugin_energy_to_carbon::EnergyToCarbonPlugin;

type Readings = Arc<Mutex<Vec<(&'static str, u64, f64)>>>;

/// Runs the plugin with `config` over `(metric, unix seconds, value)` readings of the
/// metrics `energy` (J), `gpu` (mJ) and `power` (W); returns the carbon points as
/// (energy_metric, seconds, grams, intensity_source).
fn carbon(config: &str, readings: &[(&'static str, u64, f64)]) -> Vec<(String, u64, f64, String)> {
    let queue: Readings = Arc::new(Mutex::new(readings.to_vec()));
    let q = Arc::clone(&queue);
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("src", move |alumet| {
        let energy = alumet.create_metric::<f64>("energy", Unit::Joule, "J")?;
        let gpu = alumet.create_metric::<f64>("gpu", Unit::MilliJoule, "mJ")?;
        let power = alumet.create_metric::<f64>("power", Unit::Watt, "W")?;
        let source = move |acc: &mut MeasurementAccumulator, _t: Timestamp| {
            for (name, secs, v) in q.lock().unwrap().drain(..) {
                let m = match name {
                    "energy" => energy,
                    "gpu" => gpu,
                    _ => power,
                };
                let t = Timestamp::from_unix_nanos(secs * 1_000_000_000);
                acc.push(MeasurementPoint::new(
                    t,
                    m,
                    Resource::LocalMachine,
                    ResourceConsumer::LocalMachine,
                    v,
                ));
            }
            Ok(())
        };
        alumet.add_source("s", source, Trigger::manual())?;
        Ok(())
    }));
    tester.plugin_toml::<EnergyToCarbonPlugin>(config).unwrap();
    let run = tester.start().unwrap();
    let carbon = run.metric::<f64>("carbon_emissions").unwrap();
    assert_eq!(run.trigger("src/s"), 1);
    let (_, points) = run.shutdown();
    let text = |p: &MeasurementPoint, k: &str| {
        p.attributes
            .get(k)
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    points
        .iter()
        .filter(|p| p.metric == carbon.raw())
        .map(|p| {
            (
                text(p, "energy_metric"),
                p.timestamp.unix_nanos() / 1_000_000_000,
                p.value.as_f64(),
                text(p, "intensity_source"),
            )
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn a_fixed_intensity_gives_exact_grams_for_every_energy_metric() {
    // 3.6 MJ is one kWh: 400 g at 400 g/kWh; 1800 J: 0.2 g; 360 000 mJ (360 J): 0.04 g.
    let out = carbon(
        "intensity = 400.0",
        &[
            ("energy", 1, 3.6e6),
            ("energy", 2, 1800.0),
            ("gpu", 2, 360_000.0),
            ("power", 2, 50.0),
        ],
    );
    assert_eq!(out.len(), 3, "power (W) is not energy: {out:?}");
    let expected = [("energy", 1, 400.0), ("energy", 2, 0.2), ("gpu", 2, 0.04)];
    for ((m, t, g, source), (em, et, eg)) in out.iter().zip(expected) {
        assert_eq!((m.as_str(), *t), (em, et));
        assert!(close(*g, eg), "{m}: {g} != {eg}");
        assert_eq!(source, "fixed 400 g/kWh");
    }
}

#[test]
fn a_country_takes_its_yearly_figure_and_metrics_chooses_what_is_converted() {
    let out = carbon(
        "country = 'FR'\nmetrics = ['gpu']",
        &[("energy", 1, 3.6e6), ("gpu", 1, 3.6e9)],
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, "gpu");
    assert!(close(out[0].2, 33.0), "{out:?}");
    assert_eq!(out[0].3, "country FR (Electricity Maps 2024)");
}

#[test]
fn a_time_series_applies_each_figure_from_its_time_to_the_next() {
    let dir = std::env::temp_dir().join(format!("alumet-carbon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("grid.csv");
    // Hourly: 100 g/kWh from 1000 s, 300 from 4600 s, then (the last hour) 50 from 8200 s.
    std::fs::write(&file, "time,intensity\n1000,100\n4600,300\n8200,50\n").unwrap();
    let config = format!("intensity_file = {:?}", file.display().to_string());
    let kwh = 3.6e6;
    let out = carbon(
        &config,
        &[
            ("energy", 999, kwh),   // before the series: no carbon
            ("energy", 1000, kwh),  // its first second: 100
            ("energy", 4599, kwh),  // the last second of the first hour: 100
            ("energy", 4600, kwh),  // the boundary: 300
            ("energy", 11799, kwh), // the last hour's last second: 50
            ("energy", 11800, kwh), // after it: no carbon
        ],
    );
    let got: Vec<(u64, f64)> = out.iter().map(|(_, t, g, _)| (*t, *g)).collect();
    assert_eq!(
        got,
        vec![(1000, 100.0), (4599, 100.0), (4600, 300.0), (11799, 50.0)]
    );
    assert_eq!(out[0].3, "file grid.csv");
    let _ = std::fs::remove_dir_all(&dir);
}

fn init_error(text: &str) -> String {
    let mut tester = PipelineTester::new();
    match tester.plugin_toml::<EnergyToCarbonPlugin>(text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(PluginInitError::Config(c)) => format!("{}: {}", c.key, c.message),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn bad_configs_are_errors_that_say_what_to_write() {
    assert!(init_error("").contains("give the grid's carbon intensity"));
    assert!(init_error("intensity = 10.0\ncountry = 'FR'").contains("only one of"));
    let e = init_error("country = 'ZZ'");
    assert!(
        e.contains("`ZZ` is not in the table") && e.contains("FR, GB"),
        "{e}"
    );
    assert!(init_error("intensity = -5.0").contains("above 0"));
    assert!(
        init_error("intensity_file = '/nonexistent/grid.csv'").contains("/nonexistent/grid.csv")
    );
    assert!(init_error("intensitty = 5.0").contains("intensitty"));
}

#[test]
fn the_public_alumet_keys_name_the_same_figures() {
    // emission_intensity_override: a fixed figure (an integer in Alumet's examples).
    let out = carbon("emission_intensity_override = 150", &[("energy", 1, 3.6e6)]);
    assert!(close(out[0].2, 150.0), "{out:?}");
    // country_code with an alpha-3 code, as Alumet writes it: the same country's figure.
    let alpha3 = carbon("country_code = 'FRA'", &[("energy", 1, 3.6e6)]);
    let alpha2 = carbon("country = 'FR'", &[("energy", 1, 3.6e6)]);
    assert_eq!(alpha3, alpha2);
    assert!(init_error("").contains("intensity = 475"));
}
