"""GPU utilisation, memory, temperature and power through NVML (the library behind nvidia-smi).

pynvml comes from the `nvidia-ml-py` package, a default dependency (pure Python, harmless
without a GPU). Without a GPU, without a driver, or with a broken install, gpu_stats() returns a
report with available=False and a reason to show as is: plain "no NVIDIA GPU" on a machine with
no NVIDIA driver (the usual laptop or CPU server), the cause in brackets otherwise ("no NVIDIA
GPU (NVML: driver not loaded)"). It never raises.

NVML is initialised once per process and the outcome kept, failure included: a machine without
a driver does not grow one while we poll it once a second.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class GpuStats:
    """One GPU. A reading the GPU does not support (power on some boards) is None."""

    index: int  # NVML index, as nvidia-smi numbers GPUs
    name: str
    utilization_pct: float | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    temperature_c: float | None
    power_w: float | None
    power_limit_w: float | None = None
    uuid: str | None = None


@dataclass(frozen=True)
class GpuReport:
    available: bool
    gpus: list[GpuStats] = field(default_factory=list)
    reason: str | None = None  # why there is nothing to show, when available is False
    driver_version: str | None = None


def _import_pynvml() -> Any:
    import pynvml
    return pynvml


class NvmlSession:
    """Holds the NVML handle for a process: initialised on first use, the outcome cached.

    `loader` returns the pynvml module (tests pass one that raises or fakes NVML)."""

    def __init__(self, loader: Callable[[], Any] = _import_pynvml) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._nvml: Any = None
        self._failure: str | None = None
        self._tried = False
        self.driver_version: str | None = None

    def nvml(self) -> tuple[Any, str | None]:
        """(pynvml module, None) once NVML is up; (None, reason) when it cannot be."""
        with self._lock:
            if not self._tried:
                self._tried = True
                self._nvml, self._failure = self._init()
            return self._nvml, self._failure

    def _init(self) -> tuple[Any, str | None]:
        try:
            nvml = self._loader()
        except ImportError:
            return None, "no NVIDIA GPU (nvidia-ml-py not installed)"
        except Exception as e:  # noqa: BLE001 - a broken install is "no GPU", not a crash
            return None, f"no NVIDIA GPU (cannot load pynvml: {e})"
        try:
            nvml.nvmlInit()
        except Exception as e:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, ...
            return None, _init_failure(e)
        self.driver_version = _try(lambda: _text(nvml.nvmlSystemGetDriverVersion()))
        return nvml, None

    def shutdown(self) -> None:
        with self._lock:
            if self._nvml is not None:
                with contextlib.suppress(Exception):
                    self._nvml.nvmlShutdown()
            self._nvml, self._failure, self._tried = None, None, False


NO_GPU = "no NVIDIA GPU"


def _init_failure(e: Exception) -> str:
    # No libnvidia-ml at all is what a machine without an NVIDIA GPU looks like: say only that.
    # A driver that is there but fails is worth its cause.
    reason = _nvml_reason(e)
    return NO_GPU if reason == "driver not found" else f"{NO_GPU} (NVML: {reason})"


def _nvml_reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    lowered = text.lower()
    if "library not found" in lowered or "libnvidia-ml" in lowered:
        return "driver not found"
    if "driver not loaded" in lowered:
        return "driver not loaded"
    return text


_default_session = NvmlSession()


def gpu_stats(session: NvmlSession | None = None) -> GpuReport:
    """A reading of every visible GPU now. Visible means allowed by CUDA_VISIBLE_DEVICES when it
    is set (see _visible; GPU- UUID prefixes match exactly), all GPUs otherwise."""
    session = session or _default_session
    nvml, failure = session.nvml()
    if nvml is None:
        return GpuReport(available=False, reason=failure)
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except Exception as e:  # noqa: BLE001
        return GpuReport(available=False, reason=f"no NVIDIA GPU (NVML: {_nvml_reason(e)})",
                         driver_version=session.driver_version)
    found = []  # (NVML index, handle, UUID)
    for index in range(count):
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception:  # noqa: BLE001 - a GPU that fell off the bus: skip it
            continue
        found.append((index, handle, _try(lambda: _text(nvml.nvmlDeviceGetUUID(handle)))))
    shown = _visible(nvml, found)
    gpus = [_read_gpu(nvml, index, handle, uuid) for index, handle, uuid in found
            if index in shown]
    if not gpus:
        reason = ("no GPU visible (CUDA_VISIBLE_DEVICES hides them)" if count
                  else "no NVIDIA GPU (NVML found none)")
        return GpuReport(available=False, reason=reason, driver_version=session.driver_version)
    return GpuReport(available=True, gpus=gpus, driver_version=session.driver_version)


def _read_gpu(nvml: Any, index: int, handle: Any, uuid: str | None) -> GpuStats:
    util = _try(lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    mem = _try(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
    temp = _try(lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
    power_mw = _try(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
    limit_mw = _try(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
    return GpuStats(
        index=index, name=_try(lambda: _text(nvml.nvmlDeviceGetName(handle))) or f"GPU {index}",
        utilization_pct=float(util) if util is not None else None,
        memory_used_bytes=int(mem.used) if mem is not None else None,
        memory_total_bytes=int(mem.total) if mem is not None else None,
        temperature_c=float(temp) if temp is not None else None,
        power_w=power_mw / 1000.0 if power_mw is not None else None,  # NVML reports milliwatts
        power_limit_w=limit_mw / 1000.0 if limit_mw is not None else None,
        uuid=uuid)


def _visible(nvml: Any, found: list[tuple[int, Any, str | None]]) -> set[int]:
    """The NVML indices of the GPUs CUDA_VISIBLE_DEVICES lets CUDA see (all when unset). An
    integer is CUDA's index, which is NVML's (PCI order) only with CUDA_DEVICE_ORDER=PCI_BUS_ID
    or when every GPU is the same model (CUDA's default order, fastest first, then falls back
    to the PCI order); between different models it cannot be told, so all are shown. A MIG-
    entry shows the GPU the slice is part of."""
    every = {index for index, _, _ in found}
    spec = os.environ.get("CUDA_VISIBLE_DEVICES")
    if spec is None:
        return every
    names = {_try(lambda h=handle: _text(nvml.nvmlDeviceGetName(h))) for _, handle, _ in found}
    pci_order = os.environ.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID" or len(names) <= 1
    shown: set[int] = set()
    for item in (s.strip() for s in spec.split(",")):
        if item.isdigit():
            if int(item) < len(found):
                shown |= {int(item)} & every if pci_order else every
        elif item.startswith("MIG-"):
            shown |= _mig_parent(nvml, found, item)
        elif item:
            prefix = item if item.startswith("GPU-") else f"GPU-{item}"
            shown |= {index for index, _, uuid in found if uuid and uuid.startswith(prefix)}
    return shown


def _mig_parent(nvml: Any, found: list[tuple[int, Any, str | None]], mig: str) -> set[int]:
    """The GPU holding MIG slice `mig` (its UUID); every GPU when NVML cannot list slices."""
    listed = False
    for index, handle, _ in found:
        count = _try(lambda: int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)))
        listed = listed or count is not None
        for k in range(count or 0):
            slice_uuid = _try(lambda: _text(nvml.nvmlDeviceGetUUID(
                nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, k))))
            if slice_uuid is not None and slice_uuid.startswith(mig):
                return {index}
    return set() if listed else {index for index, _, _ in found}


def _try(read: Callable[[], Any]) -> Any:
    # NVMLError_NotSupported and friends: that reading is absent, the rest still counts.
    try:
        return read()
    except Exception:  # noqa: BLE001
        return None


def _text(value: Any) -> str:
    # pynvml returned bytes before 11.5 and str since.
    return value.decode() if isinstance(value, bytes) else str(value)


def query_lines(report: GpuReport) -> str:
    """The report as `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total
    --format=csv,noheader,nounits` prints it, or "none REASON": what a remote listing reads
    over ssh (runs.remote) from tui-nn's Python on a box where it is installed."""
    if not report.gpus:
        return f"none {report.reason or NO_GPU}\n"
    return "".join(
        f"{g.index}, {'[N/A]' if g.utilization_pct is None else round(g.utilization_pct)}, "
        f"{'[N/A]' if g.memory_used_bytes is None else g.memory_used_bytes >> 20}, "
        f"{'[N/A]' if g.memory_total_bytes is None else g.memory_total_bytes >> 20}\n"
        for g in report.gpus)
