"""A PyTorch matrix-multiply loop on GPU 0 for SECONDS seconds (after CUDA starts).

Usage: load.py SECONDS PID_FILE (its pid is appended to PID_FILE).
"""
import os
import sys
import time

import torch

seconds = float(sys.argv[1])
with open(sys.argv[2], "a") as f:
    f.write(f"{os.getpid()}\n")
a = torch.randn(8192, 8192, device="cuda")
b = torch.randn(8192, 8192, device="cuda")
torch.cuda.synchronize()
end = time.time() + seconds
n = 0
while time.time() < end:
    c = a @ b
    n += 1
    if n % 20 == 0:
        torch.cuda.synchronize()
torch.cuda.synchronize()
print(f"load: {n} matmuls of 8192x8192 in {seconds} s", file=sys.stderr)
