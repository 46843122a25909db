"""Choosing the training device and describing it."""

from __future__ import annotations

import psutil
import torch


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' -> CUDA, else MPS, else CPU. Raises ValueError with a user-facing message."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device '{name}': use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device '{name}' requested but CUDA is not available here "
                             "(use --device cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device '{name}' does not exist: "
                             f"{torch.cuda.device_count()} CUDA device(s) visible")
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device 'mps' requested but MPS is not available here")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'' if n == 1 else 's'})"


def memory_in_use(device: torch.device) -> int | None:
    """On CUDA the peak allocated by tensors since the last call (between two steps the
    activations are gone: what is allocated then is not what a step needs); the process's
    resident set on the CPU."""
    if device.type == "cuda":
        peak = int(torch.cuda.max_memory_allocated(device))
        torch.cuda.reset_peak_memory_stats(device)
        return peak
    return process_rss()


def process_rss() -> int | None:
    """This process's resident set in bytes; None where it cannot be read."""
    try:
        return int(psutil.Process().memory_info().rss)
    except (psutil.Error, OSError):
        return None
