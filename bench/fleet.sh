#!/usr/bin/env bash
# A fleet on one machine: AGENTS agents (default 50), each with its own `host` label,
# measure procfs every second and push it with prometheus-remote-write to one real
# Prometheus (Debian's, remote-write receiver on a loopback port) for SECONDS (default 60).
# Then, per agent: points it wrote to its CSV == samples Prometheus holds for its host.
# Reports the agents' total CPU time and Prometheus'. Exits 1 on any difference.
#
#   bench/fleet.sh [AGENTS] [SECONDS]
#   ALUMET_AGENT=/path/to/alumet-agent bench/fleet.sh 10 20   # a prebuilt binary
set -euo pipefail
cd "$(dirname "$0")/.."
agents=${1:-50}
seconds=${2:-60}
if [ -z "${ALUMET_AGENT:-}" ]; then
    cargo build --release -q -p alumet-agent
    ALUMET_AGENT="${CARGO_TARGET_DIR:-target}/release/alumet-agent"
fi
command -v prometheus >/dev/null || { echo "needs prometheus (apt-get install prometheus)"; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}" ${prom:-}; do kill "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

ticks=$(getconf CLK_TCK)
# CPU seconds (user + system) of process $1, from /proc/PID/stat.
cpu_of() { awk -v t="$ticks" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'global:\n  scrape_interval: 1m\n' >"$work/prometheus.yml"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver 2>"$work/prometheus.log" &
prom=$!
until curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null; do sleep 0.2; done

for i in $(seq 1 "$agents"); do
    d="$work/agent-$i"
    mkdir -p "$d"
    cat >"$d/alumet-config.toml" <<TOML
[labels]
host = "agent-$i"
[plugins.procfs.kernel]
poll_interval = "1s"
[plugins.procfs.memory]
poll_interval = "1s"
[plugins.csv]
output_path = "out.csv"
[plugins.prometheus-remote-write]
url = "http://127.0.0.1:$port/api/v1/write"
TOML
    (cd "$d" && exec "$ALUMET_AGENT" --no-default-config 2>agent.log) &
    pids+=($!)
done
echo "$agents agents pushing to Prometheus on port $port for $seconds s..."
sleep "$seconds"

agent_cpu=0
for p in "${pids[@]}"; do agent_cpu=$(echo "$agent_cpu + $(cpu_of "$p")" | bc); done
for p in "${pids[@]}"; do kill -TERM "$p"; done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
prom_cpu=$(cpu_of "$prom")

mismatch=0
sent_total=0
for i in $(seq 1 "$agents"); do
    sent=$(($(wc -l <"$work/agent-$i/out.csv") - 1))
    # Every raw sample of the agent's series (a range selector returns them all).
    query="{host=\"agent-$i\",__name__=~\"alumet_.+\"}[2h]"
    got=$(curl -s -G "http://127.0.0.1:$port/api/v1/query" --data-urlencode "query=$query" |
        python3 -c 'import json, sys; a = json.load(sys.stdin); print(sum(len(r["values"]) for r in a["data"]["result"]) if a.get("status") == "success" else sys.exit("prometheus: %s" % a))')
    sent_total=$((sent_total + sent))
    if [ "$sent" != "$got" ]; then
        echo "agent-$i: $sent points sent, $got received"
        mismatch=$((mismatch + 1))
    fi
done
echo "agents: $agents, seconds: $seconds, points sent: $sent_total, agents with a difference: $mismatch, agents that exited non-zero: $failed"
echo "CPU: agents $agent_cpu s in all ($(echo "scale=3; $agent_cpu / $agents" | bc) s each), prometheus $prom_cpu s"
[ "$mismatch" -eq 0 ] && [ "$failed" -eq 0 ]
