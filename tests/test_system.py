"""The system pane's library: GPU readings through NVML (faked here, absent on CI) and the
training process's CPU and memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from tui_nn.system import GpuReport, NvmlSession, ProcessSampler, gpu_stats, process_stats


def test_without_nvidia_ml_py_the_report_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    report = gpu_stats(NvmlSession())
    assert report == GpuReport(available=False, gpus=[],
                               reason="no NVIDIA GPU (nvidia-ml-py not installed)")


class NVMLError(Exception):
    pass


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801 - pynvml's own spelling
    pass


def _no_driver():
    def init():
        raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")
    return SimpleNamespace(nvmlInit=init)


def test_without_a_driver_the_report_says_no_nvidia_gpu_and_init_is_tried_once():
    calls = []

    def loader():
        calls.append(1)
        return _no_driver()

    session = NvmlSession(loader)
    for _ in range(3):
        report = gpu_stats(session)
        assert not report.available and report.gpus == []
        assert report.reason == "no NVIDIA GPU"  # what a machine without one looks like
    assert len(calls) == 1


def test_a_driver_that_fails_is_named():
    class NVMLError_DriverNotLoaded(NVMLError):  # noqa: N801 - pynvml's own spelling
        pass

    def init():
        raise NVMLError_DriverNotLoaded("Driver Not Loaded")
    report = gpu_stats(NvmlSession(lambda: SimpleNamespace(nvmlInit=init)))
    assert report.reason == "no NVIDIA GPU (NVML: driver not loaded)"


def test_nvidia_ml_py_is_installed_by_default_and_says_no_nvidia_gpu_here():
    """The default install (pyproject's dependencies) has pynvml; on a machine without an
    NVIDIA driver the real library's failure reads as plain "no NVIDIA GPU"."""
    import pynvml  # noqa: F401 - a default dependency: this import must work
    report = gpu_stats(NvmlSession())
    if report.available:
        pytest.skip("this machine has an NVIDIA GPU")
    assert "not installed" not in report.reason and report.reason.startswith("no NVIDIA GPU")


def test_a_broken_pynvml_is_no_gpu_not_a_crash():
    def loader():
        raise OSError("undefined symbol: nvmlInit_v2")
    report = gpu_stats(NvmlSession(loader))
    assert not report.available and "cannot load pynvml" in report.reason


def test_the_default_session_never_raises():
    report = gpu_stats()
    assert isinstance(report, GpuReport)
    assert report.available == bool(report.gpus)
    assert report.available or report.reason.startswith("no ")


class NotSupported(NVMLError):
    pass


def _fake_nvml(gpus):
    """A pynvml stand-in with the calls gpu_stats makes; handles are indices."""
    def unsupported(*_):
        raise NotSupported("Not Supported")
    return SimpleNamespace(
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlSystemGetDriverVersion=lambda: b"550.54",
        nvmlDeviceGetCount=lambda: len(gpus),
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetUUID=lambda h: gpus[h]["uuid"],
        nvmlDeviceGetName=lambda h: gpus[h]["name"],
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=gpus[h]["util"], memory=0),
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=gpus[h]["used"],
                                                          total=gpus[h]["total"], free=0),
        nvmlDeviceGetTemperature=lambda h, sensor: gpus[h]["temp"],
        nvmlDeviceGetPowerUsage=lambda h: (gpus[h]["mw"] if gpus[h]["mw"] is not None
                                           else unsupported()),
        nvmlDeviceGetEnforcedPowerLimit=lambda h: 700_000,
    )


TWO_GPUS = [
    {"uuid": "GPU-aaaa-1111", "name": "NVIDIA H100 80GB HBM3", "util": 97, "used": 60 * 2**30,
     "total": 80 * 2**30, "temp": 71, "mw": 612_345},
    {"uuid": "GPU-bbbb-2222", "name": b"NVIDIA H100 80GB HBM3", "util": 0, "used": 2**20,
     "total": 80 * 2**30, "temp": 33, "mw": None},
]


def test_readings_of_every_gpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    report = gpu_stats(NvmlSession(lambda: _fake_nvml(TWO_GPUS)))
    assert report.available and report.reason is None and report.driver_version == "550.54"
    first, second = report.gpus
    assert (first.index, first.name, first.utilization_pct) == (0, "NVIDIA H100 80GB HBM3", 97.0)
    assert (first.memory_used_bytes, first.memory_total_bytes) == (60 * 2**30, 80 * 2**30)
    assert (first.temperature_c, first.power_w, first.power_limit_w) == (71.0, 612.345, 700.0)
    assert second.name == "NVIDIA H100 80GB HBM3"  # old pynvml returned bytes
    assert second.power_w is None and second.temperature_c == 33.0  # unsupported: absent


@pytest.mark.parametrize("visible,indices", [("1", [1]), ("0,1", [0, 1]), ("GPU-bbbb", [1]),
                                             ("bbbb-2222", [1]), ("7", None), ("", None),
                                             ("-1", None)])
def test_only_gpus_in_cuda_visible_devices_are_shown(monkeypatch, visible, indices):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    report = gpu_stats(NvmlSession(lambda: _fake_nvml(TWO_GPUS)))
    if indices is None:
        assert not report.available and "CUDA_VISIBLE_DEVICES" in report.reason
    else:
        assert [g.index for g in report.gpus] == indices


def test_a_machine_with_nvml_but_no_gpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    report = gpu_stats(NvmlSession(lambda: _fake_nvml([])))
    assert not report.available and report.reason == "no NVIDIA GPU (NVML found none)"


# ---- the process ----------------------------------------------------------------------------


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(1000))


def test_stats_of_this_process():
    sampler = ProcessSampler()
    first = sampler.sample()
    assert first.available and first.pid == os.getpid()
    assert first.cpu_percent is not None and first.cpu_percent > 0  # since the start: imports
    assert 10 * 2**20 < first.rss_bytes < first.ram_total_bytes  # python + torch, < the machine
    assert first.threads >= 1 and first.cpu_count >= 1
    assert 0 < first.ram_available_bytes <= first.ram_total_bytes
    _busy(0.3)
    second = sampler.sample()
    assert second.cpu_percent > 0  # the busy loop, measured since the first sample


def test_process_stats_of_another_process_and_of_none():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stats = process_stats(child.pid)
        assert stats.available and stats.pid == child.pid and stats.rss_bytes > 0
    finally:
        child.kill()
        child.wait()
    gone = process_stats(child.pid)
    assert not gone.available and gone.reason == f"no process {child.pid}"
    assert process_stats().pid == os.getpid()


def test_memory_in_use_on_the_cpu_is_this_process_resident_set():
    import torch

    from tui_nn.engine.device import memory_in_use
    rss = memory_in_use(torch.device("cpu"))
    assert rss == pytest.approx(ProcessSampler().sample().rss_bytes, rel=0.1)
