"""CPU time of each NVML query the plugin makes, on GPU 0 (pynvml, 200 calls each).

Tells where the plugin's cost per poll goes; run while the GPU is idle or busy.
"""
import resource
import time

import pynvml


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


pynvml.nvmlInit()
h = pynvml.nvmlDeviceGetHandleByIndex(0)
queries = {
    "GetHandleByIndex": lambda: pynvml.nvmlDeviceGetHandleByIndex(0),
    "GetTotalEnergyConsumption": lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(h),
    "GetPowerUsage": lambda: pynvml.nvmlDeviceGetPowerUsage(h),
    "GetTemperature": lambda: pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU),
    "GetUtilizationRates": lambda: pynvml.nvmlDeviceGetUtilizationRates(h),
    "GetMemoryInfo": lambda: pynvml.nvmlDeviceGetMemoryInfo(h),
    "GetClockInfo(SM)": lambda: pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM),
    "GetComputeRunningProcesses": lambda: pynvml.nvmlDeviceGetComputeRunningProcesses(h),
    "GetGraphicsRunningProcesses": lambda: pynvml.nvmlDeviceGetGraphicsRunningProcesses(h),
    "GetProcessUtilization": lambda: pynvml.nvmlDeviceGetProcessUtilization(h, int(time.time() * 1e6) - 1000000),
}
print(f"{'query':<30} {'CPU us/call':>12} {'wall us/call':>13}")
for name, q in queries.items():
    n = 200
    c0, w0 = cpu(), time.perf_counter()
    for _ in range(n):
        try:
            q()
        except pynvml.NVMLError as e:
            print(f"{name:<30} error: {e}")
            break
    c1, w1 = cpu(), time.perf_counter()
    print(f"{name:<30} {(c1 - c0) / n * 1e6:>12.1f} {(w1 - w0) / n * 1e6:>13.1f}")
