#!/usr/bin/env bash
# Checks the nvidia plugin against the real driver, on a machine with an NVIDIA GPU, no
# cargo and no network (nvidia-smi, python3 with pynvml and torch). Takes the release
# binary built elsewhere:
#
#   plugin-nvidia/tests/gpu-check.sh [path/to/alumet-agent] [seconds]
#
# While a PyTorch matrix-multiply loop runs (about 20 s), the agent runs in exec mode with
# the nvidia and csv plugins, wrapping that loop; then it compares:
#   1. the agent's energy over the run with the difference of the total-energy counter read
#      by pynvml within milliseconds of the agent's first and last readings (within 1%);
#   2. the agent's average power with nvidia-smi's power.draw samples (within 10%);
#   3. that the PyTorch process appears in the per-process metrics;
#   4. that the exec summary shows the GPU's joules;
#   5. with the attribution plugin on, that the PyTorch process is attributed the GPU's
#      energy and that attributed + idle + unattributed adds up to what was measured.
# Then it prints the agent's cost at a 10 ms poll interval. Exits non-zero if a check fails.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
agent="$(realpath "${1:-target/release/alumet-agent}")"
seconds="${2:-20}"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
cd "$work"

echo "== machine"
nvidia-smi --query-gpu=name,pci.bus_id,driver_version,power.limit --format=csv
"$agent" --version || true

common=(--no-default-config --config "$work/alumet-config.toml"
  --config-override 'plugins.csv.append_unit_to_metric_name=false'
  --config-override 'plugins.nvidia.poll_interval="100ms"'
  --config-override 'plugins.nvidia.flush_interval="1s"')
"$agent" --config "$work/alumet-config.toml" config regen >/dev/null

echo "== exec mode around a ${seconds} s PyTorch load"
python3 "$here/gpu/sampler.py" sampler.json sampler.ready &
sampler=$!
while [ ! -e sampler.ready ]; do sleep 0.1; done
nvidia-smi --query-gpu=power.draw --format=csv,noheader,nounits -lms 100 > smi.txt &
smi=$!
: > load.pids
status=0
RUST_LOG=info "$agent" "${common[@]}" --plugins nvidia,attribution,csv \
  --output-file "$work/agent.csv" exec --summary-json summary.json -- \
  sh -c "kill -USR1 $sampler; python3 '$here/gpu/load.py' $seconds load.pids; kill -USR1 $sampler" \
  || status=$?
kill "$smi" || true
kill -TERM "$sampler"
wait "$sampler" || true
echo "agent exit status: $status"
[ "$status" -eq 0 ] || { echo "FAIL  the agent or the load failed"; exit 1; }

echo "== comparisons"
result=0
python3 "$here/gpu/compare.py" agent.csv sampler.json smi.txt summary.json load.pids || result=1

# The agent's CPU in run mode with nvidia polled every 10 ms in MODE, over SECONDS.
cost() {
  local mode=$1 seconds=$2
  echo "== cost of run mode at a 10 ms poll interval, $mode mode, $seconds s"
  RUST_LOG=warn "$agent" "${common[@]}" --plugins nvidia,csv --output-file "$work/cost-$mode.csv" \
    --config-override 'plugins.nvidia.poll_interval="10ms"' \
    --config-override "plugins.nvidia.mode=\"$mode\"" run &
  local pid=$!
  sleep 2
  local t0 s0 t1 s1
  t0=$(awk '{print $14 + $15}' "/proc/$pid/stat"); s0=$(date +%s.%N)
  sleep "$seconds"
  t1=$(awk '{print $14 + $15}' "/proc/$pid/stat"); s1=$(date +%s.%N)
  kill -TERM "$pid"; wait "$pid" || true
  python3 - "$t0" "$t1" "$s0" "$s1" "$(getconf CLK_TCK)" "$mode" <<'PY'
import sys
t0, t1, s0, s1, hz = map(float, sys.argv[1:6])
cpu, wall = (t1 - t0) / hz, s1 - s0
print(f"agent CPU: {cpu:.2f} s over {wall:.1f} s = {cpu / wall * 100:.1f}% of a core, "
      f"{cpu / (wall / 0.010) * 1e6:.0f} us per poll (100 Hz, one GPU, {sys.argv[6]} mode)")
PY
  echo "rows written: $(wc -l < "$work/cost-$mode.csv")"
}
cost full 10
cost minimal 5

echo "== CPU cost of each NVML query (pynvml)"
python3 "$here/gpu/nvml_costs.py" || true
exit $result
