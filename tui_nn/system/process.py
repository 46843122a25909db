"""CPU and memory use of a process (the training process, by default this one).

psutil when installed (every platform); otherwise /proc on Linux; elsewhere a report with
available=False. Never raises.

CPU % is psutil's convention: 100 = one core busy, so a process using four cores reads 400.
It is measured between two calls for the same pid; the first call, having nothing to compare
with, gives the average since the process started.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any


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
    source: str | None = None  # "psutil" or "/proc"

    @property
    def rss_pct(self) -> float | None:
        if self.rss_bytes is None or not self.ram_total_bytes:
            return None
        return 100.0 * self.rss_bytes / self.ram_total_bytes


class ProcessSampler:
    """Successive readings of one process; CPU % is the share of wall time between readings."""

    def __init__(self, pid: int | None = None, *, use_psutil: bool = True) -> None:
        self.pid = os.getpid() if pid is None else int(pid)
        self._psutil = _load_psutil() if use_psutil else None
        self._last: tuple[float, float] | None = None  # (wall seconds, cpu seconds)
        self._proc: Any = None

    def sample(self) -> ProcessStats:
        try:
            if self._psutil is not None:
                return self._sample_psutil()
            if os.path.isdir("/proc/self"):
                return self._sample_proc()
            return ProcessStats(self.pid, False, reason="process stats need psutil on this "
                                                       "system (pip install psutil)")
        except _NoSuchProcess:
            return ProcessStats(self.pid, False, reason=f"no process {self.pid}")
        except (OSError, ValueError, IndexError) as e:
            return ProcessStats(self.pid, False, reason=f"cannot read process {self.pid}: {e}")

    def _cpu_percent(self, wall: float, cpu: float, lifetime_wall: float) -> float:
        last, self._last = self._last, (wall, cpu)
        if last is None:
            return 100.0 * cpu / lifetime_wall if lifetime_wall > 0 else 0.0
        dt = wall - last[0]
        return 100.0 * max(cpu - last[1], 0.0) / dt if dt > 0 else 0.0

    def _sample_psutil(self) -> ProcessStats:
        ps = self._psutil
        try:
            if self._proc is None:
                self._proc = ps.Process(self.pid)
            p = self._proc
            with p.oneshot():
                times = p.cpu_times()
                rss = p.memory_info().rss
                threads = p.num_threads()
                created = p.create_time()
        except ps.NoSuchProcess:
            raise _NoSuchProcess from None
        except ps.Error as e:  # AccessDenied, ZombieProcess
            raise OSError(str(e) or type(e).__name__) from None
        cpu = times.user + times.system
        now = time.time()
        vm = ps.virtual_memory()
        return ProcessStats(
            self.pid, True, cpu_percent=self._cpu_percent(time.monotonic(), cpu, now - created),
            rss_bytes=int(rss), threads=int(threads), cpu_count=ps.cpu_count(),
            ram_total_bytes=int(vm.total), ram_available_bytes=int(vm.available),
            source="psutil")

    def _sample_proc(self) -> ProcessStats:
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{self.pid}/statm") as f:
                resident_pages = int(f.read().split()[1])
        except FileNotFoundError:
            raise _NoSuchProcess from None
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        threads = int(fields[17])
        start_s = int(fields[19]) / ticks  # since boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        total, available = _meminfo()
        return ProcessStats(
            self.pid, True, cpu_percent=self._cpu_percent(time.monotonic(), cpu,
                                                          uptime - start_s),
            rss_bytes=resident_pages * os.sysconf("SC_PAGE_SIZE"), threads=threads,
            cpu_count=os.cpu_count(), ram_total_bytes=total, ram_available_bytes=available,
            source="/proc")


class _NoSuchProcess(Exception):
    pass


def _meminfo() -> tuple[int | None, int | None]:
    values: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    values[key] = int(rest.split()[0]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    return values.get("MemTotal"), values.get("MemAvailable")


def _load_psutil() -> Any:
    try:
        import psutil
    except ImportError:
        return None
    return psutil


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
