#!/usr/bin/env bash
# Wall time that `alumet-agent exec` adds to a command (issue #5's figure): the median of N
# runs of `exec --no-summary -- true` against the median of N runs of `true` alone, for
# procfs + CSV and for CSV only (PLUGINS="nvidia,csv csv" for other sets, space-separated).
# The runs are interleaved (true, then each agent and plugin set, N times), so that a
# machine whose speed drifts affects every figure alike; BEFORE=path/to/another/agent adds
# that binary to the same loop, to compare two builds.
#
# Each binary is copied into a fresh directory first: how a binary's pages sit in the page
# cache changes its start-up by up to 0.6 ms on the development VM (an older copy of the
# same build measured 3.39 ms where a fresh copy measured 3.14), so two builds are compared
# only as fresh copies.
#
#   cargo build --release -p alumet-agent && bench/exec-overhead.sh [N]
set -euo pipefail
agent="${AGENT:-target/release/alumet-agent}"
n="${1:-21}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$agent" "$work/agent"
agent="$work/agent"
if [ -n "${BEFORE:-}" ]; then
    cp "$BEFORE" "$work/before"
    BEFORE="$work/before"
fi
"$agent" --config "$work/alumet-config.toml" config regen >/dev/null

python3 - "$n" "$work" "${PLUGINS:-procfs,csv csv}" "$agent" ${BEFORE:+"$BEFORE"} <<'PY'
import subprocess, sys, time
n, work, plugin_sets, agents = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(), sys.argv[4:]
runs = [("true alone", ["true"])]
for label, agent in zip(["", "before: "], agents):
    for i, plugins in enumerate(plugin_sets):
        out = f"{work}/out-{len(runs)}.csv"
        cmd = [agent, "--config", f"{work}/alumet-config.toml", "--plugins", plugins,
               "--output-file", out, "exec", "--no-summary", "--", "true"]
        runs.append((f"{label}exec -- true with {plugins}", cmd))
times = {name: [] for name, _ in runs}
for _ in range(n):
    for name, cmd in runs:
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[name].append((time.perf_counter() - t) * 1000)
median = {name: sorted(v)[len(v) // 2] for name, v in times.items()}
base = median["true alone"]
print(f"true alone: {base:.2f} ms (median of {n}, interleaved)")
for name, _ in runs[1:]:
    print(f"{name}: {median[name]:.2f} ms, overhead {median[name] - base:.2f} ms")
PY
