#!/usr/bin/env bash
# On a machine with a hardware PMU: the perf plugin's cycles and instructions for one
# workload against `perf stat`'s for the same workload (two runs of it). Prints both and
# their ratio; exits 1 when they differ by more than 5 %, 2 when something is missing.
# Usage: AGENT=target/release/alumet-agent bash plugin-perf/tests/pmu-check.sh
set -euo pipefail
agent=${AGENT:-target/release/alumet-agent}
[ -x "$agent" ] || { echo "pmu-check: no agent binary at $agent (build it: cargo build --release)"; exit 2; }
command -v python3 >/dev/null || { echo "pmu-check: python3 is needed for the workload"; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
workload=(python3 -c 'print(sum(i * i for i in range(20000000)))')
cat > "$dir/config.toml" <<CONF
[plugins.perf]
events = ["cycles", "instructions", "task-clock"]
[plugins.csv]
output_path = "$dir/out.csv"
CONF
"$agent" --no-default-config --config "$dir/config.toml" --plugins perf,csv \
    exec --summary-json "$dir/summary.json" -- "${workload[@]}" >/dev/null
python3 - "$dir/summary.json" > "$dir/agent.txt" <<'PY'
import json, sys
figures = {f["name"]: f["mean"] for f in json.load(open(sys.argv[1]))["figures"]}
for name in ("cycles", "instructions"):
    value = next((v for k, v in figures.items() if k.split(" (")[0] == name), None)
    if value is None:
        sys.exit(f"pmu-check: the agent counted no {name} (no hardware PMU here?)")
    print(name, int(value))
PY
cat "$dir/agent.txt"
if ! command -v perf >/dev/null; then
    echo "pmu-check: perf (linux-perf) is not installed: only the agent's figures above"
    exit 2
fi
perf stat -x, -e cycles,instructions -- "${workload[@]}" 2> "$dir/perf.txt" >/dev/null
status=0
while read -r name ours; do
    theirs=$(awk -F, -v e="$name" '$3 == e { print $1 }' "$dir/perf.txt")
    ratio=$(python3 -c "print(f'{$ours / $theirs:.4f}')")
    echo "$name: agent $ours, perf stat $theirs, ratio $ratio"
    python3 -c "import sys; sys.exit(0 if abs($ours / $theirs - 1) <= 0.05 else 1)" || status=1
done < "$dir/agent.txt"
exit $status
