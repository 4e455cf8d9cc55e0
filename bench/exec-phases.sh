#!/usr/bin/env bash
# Where the wall time of `alumet-agent exec --no-summary -- true` goes, against `true`
# alone: medians over N runs of the phases between the scheduler's fork, exec and exit
# events (perf tracepoints, so root and `perf` are needed; the tracing itself adds a few
# microseconds to each event). Recorded system-wide: a per-process recording would copy
# its events into every new process, which slows each fork. A shell loop runs the agent
# and `true` alternately, so that each phase can be compared with the same phase of
# `true` started by the same shell:
#
#   agent start -> spawn        exec of the agent to the fork of the command
#   spawn -> command exec       the agent waits (vfork) while the command is exec'd
#   command runs                exec of the command to its exit
#   command exit -> agent exit  final readings, drain, summary, exit
#   agent exit -> shell forks   the kernel tears the agent's memory down, the shell wakes
#
# AGENT=path/to/agent measures another build; PLUGINS=csv another plugin set (one set,
# procfs,csv by default).
#
#   cargo build --release -p alumet-agent && bench/exec-phases.sh [N]
set -euo pipefail
source "$(dirname "$0")/exec-setup.sh"
true_bin="$(type -P true)"
cat >"$work/loop.sh" <<EOF
cd "$work"
echo \$\$ >shell.pid
exec >/dev/null 2>&1
for i in \$(seq $n); do
    ./agent --config alumet-config.toml --plugins ${PLUGINS:-procfs,csv} --output-file out.csv exec --no-summary -- true
    "$true_bin"
done
EOF
perf record -q -a -o "$work/perf.data" \
    -e sched:sched_process_fork,sched:sched_process_exec,sched:sched_process_exit \
    -- bash "$work/loop.sh"
perf script -i "$work/perf.data" -F pid,tid,time,event,trace >"$work/events.txt" 2>/dev/null

python3 - "$work/events.txt" "$true_bin" "$(cat "$work/shell.pid")" <<'PY'
import re, statistics, sys
events = []  # (time ms, event, pid, tid, fields)
for line in open(sys.argv[1]):
    m = re.match(r"\s*(\d+)/(\d+)\s+([\d.]+):\s+sched:(\w+):\s*(.*)", line)
    if m:
        pid, tid, t, event, fields = m.groups()
        events.append((float(t) * 1000, event, int(pid), int(tid), fields))

def field(fields, name):
    m = re.search(name + r"=(\S+)", fields)
    return m.group(1) if m else None

def first(after, pred):
    return next((e for e in events if e[0] >= after and pred(e)), None)

shell = int(sys.argv[3])
shell_forks = [e for e in events if e[1] == "sched_process_fork" and e[2] == shell]
phases = {}
def add(name, value):
    phases.setdefault(name, []).append(value)

for fork in shell_forks:
    child = int(field(fork[4], "child_pid"))
    exec_ = first(fork[0], lambda e: e[1] == "sched_process_exec" and e[2] == child)
    if exec_ is None:
        continue
    name = field(exec_[4], "filename")
    end = first(exec_[0], lambda e: e[1] == "sched_process_exit" and e[2] == child and e[3] == child)
    if end is None:
        continue
    following = first(end[0], lambda e: e in shell_forks and e[0] > end[0])
    if name.endswith("/agent"):
        spawn = first(exec_[0], lambda e: e[1] == "sched_process_fork" and e[2] == child)
        if spawn is None or spawn[0] > end[0]:
            continue
        command = int(field(spawn[4], "child_pid"))
        cmd_exec = first(spawn[0], lambda e: e[1] == "sched_process_exec" and e[2] == command)
        cmd_exit = first(spawn[0], lambda e: e[1] == "sched_process_exit" and e[2] == command)
        if cmd_exec is None or cmd_exit is None:
            continue
        add("agent: shell fork -> agent exec", exec_[0] - fork[0])
        add("agent: agent start -> spawn", spawn[0] - exec_[0])
        add("agent: spawn -> command exec", cmd_exec[0] - spawn[0])
        add("agent: command runs", cmd_exit[0] - cmd_exec[0])
        add("agent: command exit -> agent exit", end[0] - cmd_exit[0])
        if following:
            add("agent: agent exit -> shell forks", following[0] - end[0])
            add("agent: whole, fork to fork", following[0] - fork[0])
    elif name == sys.argv[2]:
        add("true: shell fork -> exec", exec_[0] - fork[0])
        add("true: runs (exec -> exit)", end[0] - exec_[0])
        if following:
            add("true: exit -> shell forks", following[0] - end[0])
            add("true: whole, fork to fork", following[0] - fork[0])

for name, values in phases.items():
    print(f"{name:36} {statistics.median(values):6.3f} ms  (median of {len(values)})")
PY
