#!/usr/bin/env bash
# Wall time that `alumet-agent exec` adds to a command (issue #5's figure): the median of N
# runs of `exec -- true` against the median of N runs of `true` alone, for procfs + CSV and
# for CSV only (PLUGINS="nvidia,csv csv" for other sets, space-separated).
#
#   cargo build --release -p alumet-agent && bench/exec-overhead.sh [N]
set -euo pipefail
agent="${AGENT:-target/release/alumet-agent}"
n="${1:-21}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$agent" --config "$work/alumet-config.toml" config regen >/dev/null

median_ms() { # command... -> median wall time in ms over n runs
  python3 - "$n" "$@" <<'PY'
import subprocess, sys, time
n, cmd = int(sys.argv[1]), sys.argv[2:]
times = []
for _ in range(n):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times.append((time.perf_counter() - t) * 1000)
times.sort()
print(f"{times[len(times) // 2]:.2f}")
PY
}

base=$(median_ms true)
echo "true alone: ${base} ms (median of $n)"
for plugins in ${PLUGINS:-procfs,csv csv}; do
  t=$(median_ms "$agent" --config "$work/alumet-config.toml" --plugins "$plugins" \
    --output-file "$work/out.csv" exec --no-summary -- true)
  echo "exec -- true with $plugins: ${t} ms, overhead $(python3 -c "print(f'{$t - $base:.2f}')") ms"
done
