#!/usr/bin/env bash
# Wall time that `alumet-agent exec` adds to a command (issue #5's figure): the median of N
# runs of `exec --no-summary -- true` against the median of N runs of `true` alone, for
# procfs + CSV and for CSV only (PLUGINS="nvidia,csv csv" for other sets, space-separated).
# The runs are interleaved (true and each agent and plugin set, N times, in a new order at
# each iteration), so that a machine whose speed drifts affects every figure alike;
# BEFORE=path/to/another/agent adds that binary to the same loop, to compare two builds.
# ORDER=blocks runs each command 7 times in a row instead, the blocks in a shuffled order
# (N is rounded up to a multiple of 7), closer to benchmark tools, which run all of a
# command's runs back to back: `true` run after `true` is quicker, an agent run after an
# agent slower, so this order gives the higher figure. PAUSE=SECONDS sleeps that long before
# each timed run, so that every run starts from an idle machine, as a command typed at a
# prompt does (a VM's vCPUs halt when idle and are slower for a while after: on the
# development VM `true` alone takes a third longer after 10 ms of idle). Each binary runs
# as a fresh copy (see exec-setup.sh).
#
#   cargo build --release -p alumet-agent && bench/exec-overhead.sh [N]
set -euo pipefail
source "$(dirname "$0")/exec-setup.sh"
if [ -n "${BEFORE:-}" ]; then
    cp "$BEFORE" "$work/before"
    BEFORE="$work/before"
fi

python3 - "$n" "$work" "${PLUGINS:-procfs,csv csv}" "${ORDER:-shuffled}" "${PAUSE:-0}" "$agent" ${BEFORE:+"$BEFORE"} <<'PY'
import random, statistics, subprocess, sys, time
n, work, plugin_sets, order_kind, agents = (int(sys.argv[1]), sys.argv[2], sys.argv[3].split(),
                                            sys.argv[4], sys.argv[6:])
try:
    pause = float(sys.argv[5])
    if not 0 <= pause <= 10:
        raise ValueError
except ValueError:
    sys.exit(f"PAUSE={sys.argv[5]}: expected a number of seconds between 0 and 10")
if order_kind not in ("shuffled", "blocks"):
    sys.exit(f"ORDER={order_kind}: expected shuffled (the default) or blocks")
runs = [("true alone", ["true"])]
for label, agent in zip(["", "before: "], agents):
    for i, plugins in enumerate(plugin_sets):
        out = f"{work}/out-{len(runs)}.csv"
        cmd = [agent, "--config", f"{work}/alumet-config.toml", "--plugins", plugins,
               "--output-file", out, "exec", "--no-summary", "--", "true"]
        runs.append((f"{label}exec -- true with {plugins}", cmd))
times = {name: [] for name, _ in runs}
BLOCK = 7
for i in range(n if order_kind == "shuffled" else -(-n // BLOCK)):
    # A new order at each iteration (the same orders from one call to the next): what
    # runs just before matters (an agent run right after another agent run is slower
    # than one right after `true`), and a fixed or rotated order keeps the same
    # neighbours. In blocks, the order of the blocks is shuffled the same way.
    order = runs[:]
    random.Random(i).shuffle(order)
    for name, cmd in order:
        for _ in range(1 if order_kind == "shuffled" else BLOCK):
            if pause:
                time.sleep(pause)
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append((time.perf_counter() - t) * 1000)
median = {name: statistics.median(v) for name, v in times.items()}
base = median["true alone"]
how = "interleaved" if order_kind == "shuffled" else f"in blocks of {BLOCK}"
if pause:
    how += f", {pause * 1000:g} ms idle before each"
print(f"true alone: {base:.2f} ms (median of {len(times['true alone'])}, {how})")
for name, _ in runs[1:]:
    over = median[name] - base
    # The overhead follows the VM's speed (it is about 2.2 times `true` alone on the
    # development VM, whether that takes 0.9 or 1.6 ms): the ratio compares loops taken
    # at different speeds.
    print(f"{name}: {median[name]:.2f} ms, overhead {over:.2f} ms ({over / base:.1f} x true alone)")
PY
