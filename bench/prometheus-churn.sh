#!/usr/bin/env bash
# Series churn at the Prometheus endpoint (issue 23): the agent measures every process
# every 500 ms (procfs watcher) and serves them on a loopback port, while short processes
# start and end at RATE per second (150 by default) for DURATION seconds (60); /metrics is scraped
# every second. Every 5 s it prints the series exposed (alumet_prometheus_series), the
# refused points (series_dropped_total) and the agent's resident memory. Expected: flat
# after the warm-up (a series goes 3 poll intervals after its process ended), not growing
# until stale_after (5 min) or max_series.
#
#   cargo build --release -p alumet-agent && bench/prometheus-churn.sh
#   AGENT=target/debug/alumet-agent RATE=150 DURATION=60 bench/prometheus-churn.sh
set -euo pipefail
agent="${AGENT:-target/release/alumet-agent}"
rate="${RATE:-150}"
seconds="${DURATION:-60}"
[ -x "$agent" ] || { echo "no agent at $agent (cargo build --release -p alumet-agent, or AGENT=...)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$work/alumet-config.toml" <<EOF
[plugins.procfs]
[plugins.procfs.kernel]
enabled = false
[plugins.procfs.memory]
enabled = false
[plugins.procfs.processes]
enabled = true
refresh_interval = "500ms"
[[plugins.procfs.processes.groups]]
poll_interval = "500ms"
flush_interval = "500ms"
[plugins.prometheus]
address = "127.0.0.1:$port"
EOF
RUST_LOG=warn "$agent" --no-default-config --config "$work/alumet-config.toml" 2>"$work/agent.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT

python3 - "$pid" "$port" "$rate" "$seconds" <<'PY'
import random, subprocess, sys, time, urllib.request
pid, port, rate, seconds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
url = f"http://127.0.0.1:{port}/metrics"

def scrape():
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith(("alumet_prometheus_series ", "alumet_prometheus_series_dropped_total ")):
            name, value = line.split(" ")
            values[name] = float(value)
    return values, len(text)

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1

for _ in range(100):
    try:
        scrape()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the endpoint never answered")

print(f"{'t (s)':>6} {'series':>7} {'dropped':>8} {'page (kB)':>9} {'RSS (MiB)':>9} {'procs started':>13}")
children, started, start = [], 0, time.monotonic()
next_scrape, next_report, slowest = start, start, 0.0
while (now := time.monotonic()) - start < seconds:
    # Short processes living 50 ms to 1.2 s: some are seen by one poll, some by several.
    due = int((now - start) * rate)
    while started < due:
        children.append(subprocess.Popen(["sleep", f"{random.uniform(0.05, 1.2):.2f}"]))
        started += 1
    children = [c for c in children if c.poll() is None]
    if now >= next_scrape:
        t0 = time.monotonic()
        values, size = scrape()
        slowest = max(slowest, time.monotonic() - t0)
        next_scrape += 1.0
        if now >= next_report:
            print(f"{now - start:6.0f} {values.get('alumet_prometheus_series', -1):7.0f} "
                  f"{values.get('alumet_prometheus_series_dropped_total', -1):8.0f} "
                  f"{size / 1000:9.0f} {rss_kib() / 1024:9.1f} {started:13d}", flush=True)
            next_report += 5.0
    time.sleep(0.002)
for c in children:
    c.wait()
time.sleep(2)
values, _ = scrape()
print(f"2 s after the last process: {values.get('alumet_prometheus_series', -1):.0f} series, "
      f"RSS {rss_kib() / 1024:.1f} MiB; slowest scrape {slowest * 1000:.0f} ms; "
      f"{started} processes in {seconds} s")
PY
if grep -E "ERROR|panicked" "$work/agent.log"; then
    echo "the agent logged errors (above)" >&2
    exit 1
fi
