"""CPU and memory use of a process (the training process, by default this one), read by psutil
on every platform. Never raises: a process that cannot be read gives available=False.

CPU % is psutil's convention: 100 = one core busy, so a process using four cores reads 400.
It is measured between two calls for the same pid; the first call, having nothing to compare
with, gives the average since the process started (psutil's own first reading is a bare 0).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class ProcessStats:
    pid: int
    available: bool
    cpu_percent: float | None = None  # 100 = one core
    rss_bytes: int | None = None  # resident memory
    threads: int | None = None
    cpu_count: int | None = None  # logical CPUs of the machine, to scale cpu_percent
    ram_total_bytes: int | None = None  # the machine's memory
    ram_available_bytes: int | None = None
    reason: str | None = None  # why there is nothing to show, when available is False


class ProcessSampler:
    """Successive readings of one process; CPU % is the share of wall time between readings."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid = os.getpid() if pid is None else int(pid)
        self._last: tuple[float, float] | None = None  # (wall seconds, cpu seconds)
        self._proc: psutil.Process | None = None

    def sample(self) -> ProcessStats:
        try:
            if self._proc is None:
                self._proc = psutil.Process(self.pid)
            p = self._proc
            with p.oneshot():
                times = p.cpu_times()
                rss = p.memory_info().rss
                threads = p.num_threads()
                created = p.create_time()
            vm = psutil.virtual_memory()
        except psutil.NoSuchProcess:
            return ProcessStats(self.pid, False, reason=f"no process {self.pid}")
        except (psutil.Error, OSError) as e:  # AccessDenied, ZombieProcess
            return ProcessStats(self.pid, False, reason=f"cannot read process {self.pid}: "
                                                       f"{str(e) or type(e).__name__}")
        cpu = times.user + times.system
        return ProcessStats(
            self.pid, True, cpu_percent=self._cpu_percent(time.monotonic(), cpu,
                                                          time.time() - created),
            rss_bytes=int(rss), threads=int(threads), cpu_count=psutil.cpu_count(),
            ram_total_bytes=int(vm.total), ram_available_bytes=int(vm.available))

    def _cpu_percent(self, wall: float, cpu: float, lifetime_wall: float) -> float:
        last, self._last = self._last, (wall, cpu)
        if last is None:
            return 100.0 * cpu / lifetime_wall if lifetime_wall > 0 else 0.0
        dt = wall - last[0]
        return 100.0 * max(cpu - last[1], 0.0) / dt if dt > 0 else 0.0


_samplers: dict[int, ProcessSampler] = {}
_samplers_lock = threading.Lock()


def process_stats(pid: int | None = None) -> ProcessStats:
    """A reading of process pid (default: this one). Call it periodically: each call measures
    CPU since the previous call for the same pid."""
    pid = os.getpid() if pid is None else int(pid)
    with _samplers_lock:
        sampler = _samplers.get(pid)
        if sampler is None:
            if len(_samplers) > 64:  # pids of finished runs: forget them
                _samplers.clear()
            sampler = _samplers[pid] = ProcessSampler(pid)
    return sampler.sample()
