#!/usr/bin/env bash
# Checks the hwmon plugin on a machine with real sensors (no cargo, no network needed):
# runs the agent with the hwmon and csv plugins for a few seconds, then lists what it read,
# per chip and sensor, next to what lm-sensors' `sensors -u` reads from the same files,
# and flags temperatures, fans, voltages and powers that differ by more than a margin (the
# two read at different instants). Takes the release binary built elsewhere:
#
#   plugin-hwmon/tests/hwmon-check.sh [path/to/alumet-agent] [seconds]
#
# lm-sensors applies /etc/sensors3.conf (its labels, and the scaling of voltages measured
# through dividers), which the agent does not: a flagged voltage or a sensor missing from
# the right column may be that, not an error.
#
# Needs python3 and lm-sensors (`sensors`). Exits non-zero if the agent fails, reads
# nothing, or a value differs from lm-sensors' beyond the margin.
set -euo pipefail

agent="$(realpath "${1:-target/release/alumet-agent}")"
seconds="${2:-5}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

echo "== machine"
uname -r
ls /sys/class/hwmon/ | while read -r h; do
  printf '%s: %s\n' "$h" "$(cat "/sys/class/hwmon/$h/name" 2>/dev/null || cat "/sys/class/hwmon/$h/device/name" 2>/dev/null || echo '?')"
done
"$agent" --version || true
command -v sensors >/dev/null || { echo "FAIL  lm-sensors is not installed (apt-get install lm-sensors)"; exit 1; }

echo "== the agent, ${seconds} s, hwmon polled every 500 ms"
"$agent" --config "$work/alumet-config.toml" config regen >/dev/null
RUST_LOG=info "$agent" --config "$work/alumet-config.toml" \
  --plugins hwmon,csv --output-file "$work/agent.csv" \
  --config-override 'plugins.hwmon.poll_interval="500ms"' \
  --config-override 'plugins.hwmon.flush_interval="1s"' \
  --config-override 'plugins.csv.append_unit_to_metric_name=false' \
  run 2> agent.log &
pid=$!
sleep "$seconds"
kill -INT "$pid" 2>/dev/null || true
status=0
wait "$pid" || status=$?
grep -E "hwmon" agent.log | head -20 || true
[ "$status" -eq 0 ] || { echo "FAIL  the agent exited with $status"; tail -20 agent.log; exit 1; }
sensors -u > sensors.txt 2>&1 || true

echo "== what the agent read (last value per sensor) next to sensors -u"
python3 - agent.csv sensors.txt <<'PY'
import csv, re, sys
agent_csv, sensors_txt = sys.argv[1:3]

def attrs(row):
    out = {k: v for k, v in row.items() if k not in (None, "__late_attributes")}
    for pair in (row.get("__late_attributes") or "").split(","):
        if "=" in pair:
            k, v = pair.split("=", 1)
            out[k] = v
    return out

last = {}
with open(agent_csv) as f:
    for row in csv.DictReader(f, delimiter=";"):
        a = attrs(row)
        if not row["metric"].startswith("hwmon_") or row["metric"] == "hwmon_energy":
            continue
        last[(a.get("chip", "?"), a.get("label", "?"), row["metric"])] = (float(row["value"]), row["resource_kind"], row["resource_id"])
if not last:
    print("FAIL  the agent read no sensor"); sys.exit(1)

# sensors -u: "chip-bus-addr" headers, "label:" lines, then "  tempN_input: 45.000".
theirs, chip, label = {}, None, None
for line in open(sensors_txt):
    line = line.rstrip("\n")
    if not line:
        chip = None; continue
    if chip is None:
        chip = line.split("-")[0]; continue
    if not line.startswith(" ") and line.endswith(":"):
        label = line[:-1]; continue
    m = re.match(r"\s+(temp|fan|in|curr|power)(\d+)_(input|average):\s+(-?[\d.]+)", line)
    if m:
        theirs[(chip, label, m.group(1))] = float(m.group(4))

metric_kind = {"hwmon_temperature": ("temp", 3.0), "hwmon_fan_speed": ("fan", 300.0),
               "hwmon_voltage": ("in", 0.05), "hwmon_current": ("curr", 0.5), "hwmon_power": ("power", 20.0)}
bad = 0
print(f"{'chip':14} {'label':24} {'metric':18} {'agent':>12} {'sensors':>12}  resource")
for (chip, label, metric), (value, rkind, rid) in sorted(last.items()):
    kind, margin = metric_kind[metric]
    # lm-sensors names a sensor without a label by its file stem too (temp1).
    ref = theirs.get((chip, label, kind))
    flag = ""
    if ref is not None and abs(ref - value) > margin:
        flag, bad = "  <-- differs", bad + 1
    shown = "-" if ref is None else f"{ref:.3f}"
    print(f"{chip:14} {label:24} {metric:18} {value:12.3f} {shown:>12}  {rkind}/{rid}{flag}")
matched = sum(1 for (c, l, m) in last if (c, l, metric_kind[m][0]) in theirs)
print(f"\n{len(last)} sensors read by the agent, {matched} also in sensors -u, {bad} differ beyond the margin")
sys.exit(1 if bad else 0)
PY
echo "== sensors -u (lm-sensors)"
cat sensors.txt
