//! NVIDIA GPUs through NVML.
