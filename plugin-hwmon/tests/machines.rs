//! Fixture trees shaped like real machines, through the plugin in a real pipeline: every
//! sensor's value in its metric's unit, its chip and label, and the resource it measures.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn intel_desktop_coretemp_nvme_and_super_io_in_base_units() {
    let f = Fixture::copy("intel-desktop", "intel");
    let run = start(&f.config(""));
    assert_eq!(poll(&run), 4, "coretemp, nvme, nct6798, acpitz");
    let names = names(&run);
    assert_eq!(unit(&run, "hwmon_temperature"), "Cel");
    assert_eq!(unit(&run, "hwmon_fan_speed"), "{rpm}");
    assert_eq!(unit(&run, "hwmon_voltage"), "V");
    let (_, points) = run.shutdown();
    let polls = per_poll(&names, &points);
    assert_eq!(polls.len(), 1);
    let got = &polls[0];
    let t = |chip, label| got[&key("hwmon_temperature", chip, label)];
    assert_eq!(t("coretemp", "Package id 0"), 45.0);
    assert_eq!(t("coretemp", "Core 0"), 41.0);
    assert_eq!(t("coretemp", "Core 1"), 43.0);
    assert_eq!(t("nvme", "Composite"), 38.85);
    assert_eq!(t("nvme", "Sensor 1"), 39.85);
    assert_eq!(t("acpitz", "temp1"), 27.8);
    assert_eq!(got[&key("hwmon_fan_speed", "nct6798", "fan1")], 1200.0);
    assert_eq!(got[&key("hwmon_fan_speed", "nct6798", "fan2")], 0.0);
    assert_eq!(got[&key("hwmon_voltage", "nct6798", "in0")], 1.032);
    assert_eq!(got[&key("hwmon_voltage", "nct6798", "in1")], 1.016);
    // 6 temperatures, 2 fans, 2 voltages: `_max`, `_crit`, `pwm1` are not read.
    assert_eq!(got.len(), 10, "{got:?}");
    assert_eq!(
        resource_of(&points, "coretemp"),
        ("cpu_package".into(), "0".into())
    );
    assert_eq!(
        resource_of(&points, "nvme"),
        ("hwmon_chip".into(), "nvme/nvme0".into())
    );
    assert_eq!(
        resource_of(&points, "nct6798"),
        ("hwmon_chip".into(), "nct6798/nct6775.656".into())
    );
}

#[test]
fn amd_server_k10temp_amdgpu_power_and_energy_counter_and_bmc_power_meter() {
    let f = Fixture::copy("amd-gpu-server", "amd");
    let run = start(&f.config(""));
    assert_eq!(poll(&run), 3);
    // 2.5 J later, at 40 W.
    f.set("hwmon1/energy1_input", "123459289000");
    f.set("hwmon1/power1_average", "40000000");
    poll(&run);
    let names = names(&run);
    assert_eq!(unit(&run, "hwmon_power"), "W");
    assert_eq!(unit(&run, "hwmon_energy"), "J");
    let (_, points) = run.shutdown();
    let polls = per_poll(&names, &points);
    assert_eq!(polls.len(), 2);
    let (first, second) = (&polls[0], &polls[1]);
    assert_eq!(first[&key("hwmon_temperature", "k10temp", "Tctl")], 52.125);
    assert_eq!(first[&key("hwmon_temperature", "k10temp", "Tccd1")], 48.5);
    assert_eq!(first[&key("hwmon_power", "amdgpu", "power1")], 35.0);
    assert_eq!(second[&key("hwmon_power", "amdgpu", "power1")], 40.0);
    assert_eq!(first[&key("hwmon_temperature", "amdgpu", "junction")], 43.0);
    assert_eq!(first[&key("hwmon_fan_speed", "amdgpu", "fan1")], 820.0);
    assert_eq!(first[&key("hwmon_voltage", "amdgpu", "vddgfx")], 0.806);
    assert_eq!(first[&key("hwmon_power", "power_meter", "power1")], 245.0);
    // The counter's first reading is a baseline; then the exact difference. amdgpu has a
    // counter, so its power is not integrated.
    let energy = key("hwmon_energy", "amdgpu", "energy1/counter");
    assert!(!first.contains_key(&energy));
    assert_eq!(second[&energy], 2.5);
    assert!(!second.contains_key(&key("hwmon_energy", "amdgpu", "power1/integrated")));
    // The power meter has no counter: its power is integrated (245 W over the time
    // between the two polls), marked as such.
    let meter = second[&key("hwmon_energy", "power_meter", "power1/integrated")];
    assert!(meter > 0.0 && meter < 245.0 * 60.0, "{meter}");
    assert_eq!(first.len(), 8, "{first:?}");
    assert_eq!(second.len(), 10, "{second:?}");
    let gpu = points.iter().find(|p| text(p, "chip") == "amdgpu").unwrap();
    assert_eq!(
        gpu.resource,
        alumet::measurement::Resource::Gpu {
            bus_id: "0000:03:00.0".into()
        }
    );
    assert_eq!(
        resource_of(&points, "k10temp"),
        ("cpu_package".into(), "0".into())
    );
    assert_eq!(
        resource_of(&points, "power_meter"),
        ("hwmon_chip".into(), "power_meter/ACPI000D:00".into())
    );
}

#[test]
fn grace_hopper_power_meters_are_labelled_from_their_oem_info() {
    let f = Fixture::copy("grace-hopper", "grace");
    let run = start(&f.config("include = [\"power_meter\"]"));
    assert_eq!(poll(&run), 4);
    let names = names(&run);
    let (_, points) = run.shutdown();
    let got = &per_poll(&names, &points)[0];
    let p = |label| got[&key("hwmon_power", "power_meter", label)];
    assert_eq!(
        [p("Module"), p("Grace"), p("CPU"), p("SysIO")],
        [350.0, 120.0, 95.0, 15.0]
    );
    assert_eq!(got.len(), 4, "{got:?}");
    let module = points
        .iter()
        .find(|p| text(p, "label") == "Module")
        .unwrap();
    assert_eq!(text(module, "sensor"), "module");
    assert_eq!(text(module, "socket"), "U64(0)");
}

#[test]
fn jetson_ina3221_rails_are_voltage_times_current_labelled_from_in_label() {
    let f = Fixture::copy("jetson-orin", "jetson");
    let run = start(&f.config(""));
    assert_eq!(poll(&run), 1);
    let names = names(&run);
    assert_eq!(unit(&run, "hwmon_current"), "A");
    let (_, points) = run.shutdown();
    let got = &per_poll(&names, &points)[0];
    assert_eq!(got[&key("hwmon_voltage", "ina3221", "VDD_IN")], 19.072);
    assert_eq!(got[&key("hwmon_current", "ina3221", "VDD_IN")], 0.386);
    // 19072 mV × 386 mA = 7 361 792 µW.
    assert_eq!(got[&key("hwmon_power", "ina3221", "VDD_IN")], 7.361792);
    assert_eq!(
        got[&key("hwmon_power", "ina3221", "VDD_CPU_GPU_CV")],
        1.067136
    );
    assert_eq!(got[&key("hwmon_power", "ina3221", "VDD_SOC")], 3.05024);
    // Three channels: voltage, current, power each; the shunt voltages and sums are not.
    assert_eq!(got.len(), 9, "{got:?}");
    assert_eq!(
        resource_of(&points, "ina3221"),
        ("hwmon_chip".into(), "ina3221/1-0040".into())
    );
}
