"""Reads the GPU's total-energy counter through pynvml when told to (SIGUSR1), so that the
readings bracket the agent's own first and last readings within milliseconds.

Usage: sampler.py OUT.json READY_FILE. SIGUSR1 records (time, counter); SIGTERM writes
the records to OUT.json and exits.
"""
import json
import signal
import sys
import time

import pynvml

pynvml.nvmlInit()
handle = pynvml.nvmlDeviceGetHandleByIndex(0)
records = []


def record(_signum, _frame):
    records.append({"t": time.time(), "energy_mj": pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)})


def finish(_signum, _frame):
    with open(sys.argv[1], "w") as f:
        json.dump({"records": records, "bus_id": bus_id}, f)
    sys.exit(0)


bus_id = pynvml.nvmlDeviceGetPciInfo(handle).busId
if isinstance(bus_id, bytes):
    bus_id = bus_id.decode()
signal.signal(signal.SIGUSR1, record)
signal.signal(signal.SIGTERM, finish)
open(sys.argv[2], "w").close()
while True:
    signal.pause()
