"""Compares what the agent measured with pynvml and nvidia-smi; exits 1 if one check fails.

Usage: compare.py AGENT.csv SAMPLER.json SMI.txt SUMMARY.json LOAD_PIDS.txt
"""
import csv
import json
import sys

agent_csv, sampler_json, smi_txt, summary_json, pids_txt = sys.argv[1:6]
failed = []


def check(name, ok, detail):
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    if not ok:
        failed.append(name)


rows = list(csv.DictReader(open(agent_csv), delimiter=";"))
sampler = json.load(open(sampler_json))
bus_id = sampler["bus_id"]


def agent_values(metric, consumer_kind="local_machine"):
    return [
        (int(r["timestamp"]) if r["timestamp"].isdigit() else r["timestamp"], float(r["value"]), r)
        for r in rows
        if r["metric"] == metric and r["consumer_kind"] == consumer_kind
        and r["resource_id"].lower() == bus_id.lower()
    ]


metrics = sorted({r["metric"] for r in rows})
print(f"metrics written by the agent: {', '.join(metrics)}")

# 1. Energy over the window: the agent's sum against the counter difference read by pynvml
#    within milliseconds of the agent's first and last readings (exec mode reads every
#    source just before the command starts and just after it ends).
records = sampler["records"]
if len(records) != 2:
    check("pynvml readings", False, f"expected 2, got {len(records)}")
else:
    reference_mj = records[1]["energy_mj"] - records[0]["energy_mj"]
    window_s = records[1]["t"] - records[0]["t"]
    agent_mj = sum(v for _, v, _ in agent_values("nvml_energy_consumption"))
    error = abs(agent_mj - reference_mj) / reference_mj if reference_mj else 1.0
    check(
        "energy within 1% of pynvml",
        error <= 0.01,
        f"agent {agent_mj / 1000:.1f} J, pynvml {reference_mj / 1000:.1f} J over {window_s:.2f} s, error {error * 100:.3f}%",
    )

    # 2. Average power against nvidia-smi's samples over the same window.
    smi = []
    for line in open(smi_txt):
        try:
            smi.append(float(line.strip().split(",")[0]))
        except ValueError:
            pass
    power = [v / 1000.0 for _, v, _ in agent_values("nvml_instant_power")]
    if not smi or not power:
        check("average power", False, f"{len(smi)} nvidia-smi samples, {len(power)} agent samples")
    else:
        smi_mean = sum(smi) / len(smi)
        agent_mean = sum(power) / len(power)
        from_energy = agent_mj / 1000.0 / window_s
        error = abs(agent_mean - smi_mean) / smi_mean
        check(
            "average power within 10% of nvidia-smi",
            error <= 0.10,
            f"agent {agent_mean:.1f} W (mean of {len(power)} readings; energy/time {from_energy:.1f} W), "
            f"nvidia-smi {smi_mean:.1f} W (mean of {len(smi)} samples), error {error * 100:.2f}%",
        )

# 3. The PyTorch process in the per-process metrics.
load_pids = {line.strip() for line in open(pids_txt) if line.strip()}
per_process = {}
for r in rows:
    if r["consumer_kind"] == "process":
        per_process.setdefault(r["consumer_id"], set()).add(r["metric"])
found = {pid: sorted(m) for pid, m in per_process.items() if pid in load_pids}
check(
    "PyTorch process in the per-process metrics",
    bool(found),
    f"load pid(s) {sorted(load_pids)}; per-process consumers {sorted(per_process)}; metrics of the load {found}",
)

# 5. Attribution of the GPU's energy (the attribution plugin is on in exec mode).
def attr(row, key):
    if row.get(key):
        return row[key]
    for pair in (row.get("__late_attributes") or "").split(","):
        k, _, v = pair.partition("=")
        if k == key:
            return v
    return None


def joules(metric, consumer=None):
    return sum(
        float(r["value"])
        for r in rows
        if r["metric"] == metric and attr(r, "source") == "nvml"
        and r["resource_id"].lower() == bus_id.lower()
        and (consumer is None or r["consumer_id"] in consumer)
    )


measured = sum(v for _, v, _ in agent_values("nvml_energy_consumption")) / 1000.0
attributed = joules("attributed_energy")
to_load = joules("attributed_energy", load_pids)
idle = joules("idle_energy")
unattributed = joules("unattributed_energy")
total = attributed + idle + unattributed
check(
    "attribution adds up to the measured GPU energy",
    measured > 0 and abs(total - measured) <= 1e-6 * measured,
    f"attributed {attributed:.3f} J + idle {idle:.3f} J + unattributed {unattributed:.3f} J = {total:.3f} J; measured {measured:.3f} J",
)
check(
    "the PyTorch process is attributed the GPU's energy",
    to_load > 0.5 * measured,
    f"{to_load:.1f} J of {measured:.1f} J ({100 * to_load / measured if measured else 0:.1f}%) to pid(s) {sorted(load_pids)}",
)

# 4. The exec summary shows the GPU's joules.
summary = json.load(open(summary_json))
text = json.dumps(summary)
check("exec summary has the GPU energy", "nvml_energy_consumption" in text, text[:300])
attributed_lines = [f["name"] + f" = {f['mean']:.3f} " + f["unit"] for f in summary["figures"] if "attributed" in f["name"] or "idle_energy" in f["name"]]
check("exec summary has the command's attributed GPU energy", any("attributed_energy (the command)" in l for l in attributed_lines), "; ".join(attributed_lines))

sys.exit(1 if failed else 0)
