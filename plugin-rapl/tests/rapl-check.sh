#!/usr/bin/env bash
# Checks the rapl plugin against the real counters, on a machine that exposes RAPL through
# the perf_event `power` PMU (no cargo needed: python3 only). Takes the release binary
# built elsewhere:
#
#   plugin-rapl/tests/rapl-check.sh [path/to/alumet-agent] [seconds]
#
# The agent runs in exec mode with the rapl and csv plugins around a CPU load of SECONDS
# (3 by default), while this script reads the same counters itself, through its own
# perf_event_open, just before starting the agent and just after it exits. Then, for each
# domain:
#   1. the agent's joules over the command are at most this script's joules over the
#      agent's whole run, and within 5% of them (the difference is the agent's start and
#      end, a few milliseconds of the run);
#   2. the average power is plausible (between 0.1 and 5000 W).
# A domain whose counter does not move (a virtual machine may expose a `power` PMU that
# always reads 0, a server's firmware may not feed psys) cannot be compared: the agent must
# have warned that it has not moved. Then it prints what `exec -- true` and `exec -- sleep 1`
# cost with the plugin on. Exits 1 if a check fails or the machine has no RAPL perf events,
# 2 if no domain moved (nothing compared), 0 otherwise.
set -uo pipefail

agent="$(realpath "${1:-target/release/alumet-agent}")"
seconds="${2:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

echo "== machine"
pmu=/sys/bus/event_source/devices/power
if [ ! -d "$pmu/events" ]; then
    echo "FAIL  no perf_event power PMU here ($pmu/events): nothing to check"
    exit 1
fi
echo "power PMU type $(cat "$pmu/type"), cpumask $(cat "$pmu/cpumask"): $(ls "$pmu/events" | tr '\n' ' ')"
ls /sys/class/powercap 2>/dev/null | tr '\n' ' ' || true
echo
"$agent" --config "$work/alumet-config.toml" config regen >/dev/null || { echo "FAIL  config regen"; exit 1; }
common=(--no-default-config --config "$work/alumet-config.toml"
  --config-override 'plugins.csv.append_unit_to_metric_name=false')

echo "== exec mode around a ${seconds} s CPU load"
python3 - "$agent" "$seconds" "$pmu" "${common[@]}" <<'PY'
import ctypes, json, os, platform, re, subprocess, sys

agent, seconds, pmu, common = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
if platform.machine() != "x86_64":
    sys.exit(f"FAIL  perf_event_open's number is known here for x86_64 only, not {platform.machine()}")
SYS_PERF_EVENT_OPEN = 298


class Attr(ctypes.Structure):
    # struct perf_event_attr up to config2 (PERF_ATTR_SIZE_VER1, 72 bytes).
    _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32),
                ("config", ctypes.c_uint64), ("sample_period", ctypes.c_uint64),
                ("sample_type", ctypes.c_uint64), ("read_format", ctypes.c_uint64),
                ("flags", ctypes.c_uint64), ("wakeup_events", ctypes.c_uint32),
                ("bp_type", ctypes.c_uint32), ("config1", ctypes.c_uint64),
                ("config2", ctypes.c_uint64)]


libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def cpus(text):
    out = []
    for part in text.strip().split(","):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


pmu_type = int(open(f"{pmu}/type").read())
mask = cpus(open(f"{pmu}/cpumask").read())
vendor = next((l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("vendor_id")), "")
# Which CPUs of the cpumask count, as the agent counts them: Intel's dies are parts of their
# package (summed), AMD's and Hygon's mirror it (one per package), and one platform counter.
def package_of(cpu):
    return int(open(f"/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id").read())
one_per_package = list({package_of(c): c for c in reversed(mask)}.values())
# energy-pkg -> the agent's domain attribute.
names = {"pkg": "package", "cores": "pp0", "gpu": "pp1", "ram": "dram", "psys": "platform"}
events = {}
for entry in sorted(os.listdir(f"{pmu}/events")):
    if not entry.startswith("energy-") or "." in entry:
        continue
    spec = dict(kv.split("=") for kv in open(f"{pmu}/events/{entry}").read().strip().split(","))
    scale = float(open(f"{pmu}/events/{entry}.scale").read())
    domain = names.get(entry[len("energy-"):], entry)
    if domain == "platform":
        readers = mask[:1]
    elif vendor in ("AuthenticAMD", "HygonGenuine"):
        readers = one_per_package
    else:
        readers = mask
    fds = []
    for cpu in readers:
        attr = Attr(type=pmu_type, size=ctypes.sizeof(Attr), config=int(spec["event"], 0))
        fd = libc.syscall(SYS_PERF_EVENT_OPEN, ctypes.byref(attr), -1, cpu, -1, 0)
        if fd < 0:
            sys.exit(f"FAIL  perf_event_open({entry}, cpu {cpu}): {os.strerror(ctypes.get_errno())}")
        fds.append(fd)
    events[domain] = (fds, scale)
if not events:
    sys.exit("FAIL  the power PMU lists no energy-* event")


def read_all():
    return {d: sum(int.from_bytes(os.read(fd, 8), "little") for fd in fds) * scale
            for d, (fds, scale) in events.items()}


load = f"import time\nt = time.time() + {seconds}\nwhile time.time() < t: pass"
cmd = [agent, *common, "--plugins", "rapl,csv", "--output-file", "agent.csv",
       "exec", "--summary-json", "summary.json", "--", "python3", "-c", load]
before = read_all()
run = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
after = read_all()
sys.stderr.write(run.stderr)
if run.returncode != 0:
    sys.exit(f"FAIL  the agent exited with {run.returncode}")
summary = json.load(open("summary.json"))
wall = next(f for f in summary["figures"] if f["name"] == "wall time")["mean"]
failed = False
still = []
for domain in events:
    own = after[domain] - before[domain]
    if own == 0 and domain != "pp1":
        # A stub (a KVM guest's energy-psys; psys unfed by a server's firmware): the agent
        # must say so, and there is nothing to compare.
        # "rapl: platform (...) has not moved", "rapl: package 0 dram (...) has not moved".
        said = re.compile(rf"rapl: (package \d+ )?{domain} \(.*\) has not moved")
        warned = any(said.search(l) for l in run.stderr.splitlines())
        print(f"{'PASS' if warned else 'FAIL'}  {domain}: the counters did not move in {wall:.1f} s "
              f"(a stub?), and the agent {'warned' if warned else 'did not warn'} about it")
        failed |= not warned
        still.append(domain)
        continue
    agents = [f for f in summary["figures"] if f["unit"] == "J"
              and f["name"].startswith("rapl_consumed_energy ") and f"domain={domain}" in f["name"]]
    if not agents:
        print(f"FAIL  {domain}: no rapl_consumed_energy figure in the summary: "
              f"{[f['name'] for f in summary['figures']]}")
        failed = True
        continue
    measured = sum(f["mean"] for f in agents)
    watts = measured / wall
    # An integrated GPU (pp1) may rightly use next to nothing; 1 mJ of slack for rounding.
    low = 0 if domain == "pp1" else 0.1
    ok = (measured <= own * 1.001 + 0.001 and own - measured <= 0.05 * own + 0.001
          and low <= watts <= 5000)
    print(f"{'PASS' if ok else 'FAIL'}  {domain}: agent {measured:.3f} J over the command "
          f"({wall:.3f} s, {watts:.2f} W); this script {own:.3f} J over the agent's whole run "
          f"({(own - measured) / own * 100 if own else 0:.2f}% more)")
    failed |= not ok
sys.exit(1 if failed else 2 if len(still) == len(events) else 0)
PY
status=$?

echo "== start-up with the rapl plugin on (medians of 21)"
python3 - "$agent" "${common[@]}" <<'PY'
import statistics, subprocess, sys, time
agent, common = sys.argv[1], sys.argv[2:]
def median(cmd):
    times = []
    for _ in range(21):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000
base = median(["true"])
for plugins in ["procfs,csv", "rapl,procfs,csv"]:
    run = [agent, *common, "--plugins", plugins, "--output-file", "cost.csv", "exec", "--no-summary", "--"]
    print(f"exec -- true with {plugins}: {median(run + ['true']) - base:.2f} ms above true ({base:.2f} ms)")
    t = time.perf_counter()
    subprocess.run(run + ["sleep", "1"], check=True)
    print(f"exec -- sleep 1 with {plugins}: {time.perf_counter() - t:.3f} s")
PY
exit $status
