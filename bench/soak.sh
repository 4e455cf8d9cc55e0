#!/usr/bin/env bash
# Soak (issue 24): the agent at 1 kHz with procfs (kernel, memory, network) + CSV +
# Prometheus, /metrics scraped every second, for DURATION seconds (600). Its resident
# memory is sampled every 10 s; at the end the script prints the samples, the growth
# between minute 2 and the end (target: at most 1%), and the agent's own report of the
# points each output wrote, dropped and lost (target: 0 lost or dropped, exit 0).
#
#   cargo build --release -p alumet-agent && bench/soak.sh
#   DURATION=120 bench/soak.sh        # a short run
set -euo pipefail
agent="${AGENT:-target/release/alumet-agent}"
seconds="${DURATION:-600}"
[ -x "$agent" ] || { echo "no agent at $agent (cargo build --release -p alumet-agent, or AGENT=...)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$work/alumet-config.toml" <<EOF
[plugins.procfs.kernel]
poll_interval = "1ms"
flush_interval = "100ms"
[plugins.procfs.memory]
poll_interval = "1ms"
flush_interval = "100ms"
[plugins.procfs.network]
poll_interval = "1ms"
flush_interval = "100ms"
[plugins.procfs.processes]
enabled = false
[plugins.csv]
output_path = "$work/out.csv"
force_flush = false
[plugins.prometheus]
address = "127.0.0.1:$port"
EOF
RUST_LOG=info "$agent" --no-default-config --config "$work/alumet-config.toml" 2>"$work/agent.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT

python3 - "$pid" "$port" "$seconds" <<'PY'
import sys, time, urllib.request
pid, port, seconds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
start = time.monotonic()
samples, failed_scrapes, next_sample = [], 0, 0.0
while (t := time.monotonic() - start) < seconds:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except Exception:
        failed_scrapes += 1
    if t >= next_sample:
        samples.append((round(t), rss_kib()))
        print(f"t={round(t):4d}s rss={samples[-1][1]} KiB", flush=True)
        next_sample += 10
    time.sleep(1)
after2 = [r for (t, r) in samples if t >= 120] or [r for (_, r) in samples]
base, last, peak = after2[0], after2[-1], max(after2)
print(f"rss from minute 2: first {base} KiB, last {last} KiB, max {peak} KiB, "
      f"growth {100.0 * (last - base) / base:+.2f}% (max {100.0 * (peak - base) / base:+.2f}%)")
print(f"failed scrapes: {failed_scrapes}")
PY
kill -TERM "$pid"
set +e
wait "$pid"
code=$?
set -e
grep -E "output .*points written|exiting with status" "$work/agent.log" || true
rows=$(($(wc -l <"$work/out.csv") - 1))
echo "rows in the CSV: $rows; agent exit status: $code"
