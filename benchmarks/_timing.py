"""Timing helpers shared by the benchmarks: compiled functions only, after warm-up."""

from __future__ import annotations

import datetime
import platform
import statistics
import time

import jax


def median_seconds(fn, *args, repeats: int = 10, warmup: int = 2, min_total_s: float = 0.0) -> float:
    """Median wall time of ``fn(*args)`` after ``warmup`` calls, results blocked on.

    ``fn`` should be jitted: the warm-up calls absorb compilation. At least
    ``repeats`` timed calls are made, more while their total is under
    ``min_total_s``.
    """
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times: list[float] = []
    while len(times) < repeats or sum(times) < min_total_s:
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
        if len(times) >= 1000:
            break
    return statistics.median(times)


def environment() -> dict:
    """Device, versions and date, for every benchmark output."""
    dev = jax.devices()[0]
    return {
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}".rstrip(":"),
        "device_count": jax.device_count(),
        "jax_version": jax.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
    }


def torch_device() -> str:
    """Where a PyTorch peer runs: on the GPU when jax runs on one and this torch
    build sees it, else on the CPU (so both sides always share a device)."""
    import torch

    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def torch_sync(device: str) -> None:
    """Waits for PyTorch's queued GPU work (a no-op on the CPU)."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
