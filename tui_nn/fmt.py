"""How numbers, durations, sizes, metrics and run states read, everywhere: the headless
console, `tui-nn runs`, the app and `watch`. Standard library only (no torch, no UI), so the
views that never train import it for free."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20,
               "mb": 10**6, "mib": 1 << 20, "g": 1 << 30, "gb": 10**9, "gib": 1 << 30,
               "t": 1 << 40, "tb": 10**12, "tib": 1 << 40}
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def fmt_duration(seconds: float | None) -> str:
    """mm:ss, or h:mm:ss from an hour on; '--:--' when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def fmt_hms(seconds: float | None) -> str:
    """h:mm:ss (a table column: always the same shape); '-' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(round(max(seconds, 0.0)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


_HIGHER_IS_BETTER = frozenset({"accuracy", "acc", "top1", "top5", "f1", "auc", "precision",
                               "recall", "iou", "map", "bleu"})


def higher_is_better(metric: str | None) -> bool:
    """Whether a bigger value of this metric means a better model: accuracy and the scores in
    _HIGHER_IS_BETTER, also as val_acc or val/f1; a loss or an error (mse, val_loss) otherwise.
    The trainer, tui_nn.Run and the app pick the best epoch by it."""
    name = (metric or "").lower()
    for prefix in ("val_", "val/", "valid_", "test_", "eval_"):
        name = name.removeprefix(prefix)
    return name in _HIGHER_IS_BETTER


def fmt_metric(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.2f}%" if metric == "accuracy" else f"{value:.4g}"


def fmt_count(n: int) -> str:
    """467200 -> '467.2K'; small numbers stay exact."""
    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _binary_unit(n: float) -> tuple[str, int]:
    """The largest binary unit n reaches (B under 1 KiB, TiB at most) and its size."""
    for i, unit in enumerate(_BINARY_UNITS):
        if abs(n) < 1024 ** (i + 1) or unit == _BINARY_UNITS[-1]:
            return unit, 1024 ** i
    raise AssertionError  # pragma: no cover


def fmt_bytes(n: int | float | None, places: int = 1, short: bool = False) -> str:
    """1536 -> '1.5 KiB' (places decimals from KiB on); short: '1.5K', whole from 100 on
    ('480K'), for a narrow column; '-' when unknown."""
    if n is None:
        return "-"
    unit, size = _binary_unit(n)
    if unit == "B":
        return f"{int(n)}B" if short else f"{int(n)} B"
    value = n / size
    if short:
        return f"{value:.{0 if abs(value) >= 100 else 1}f}{unit[0]}"
    return f"{value:.{places}f} {unit}"


def fmt_bytes_pair(used: int | float | None, total: int | float | None) -> str:
    """'3.0/8.0 GiB': used in the unit of total, so the two compare at a glance; '?' for an
    unknown one."""
    unit, size = _binary_unit(total if total is not None else used or 0)
    places = 0 if unit == "B" else 1
    used_s, total_s = ("?" if v is None else f"{v / size:.{places}f}" for v in (used, total))
    return f"{used_s}/{total_s} {unit}"


def format_shape(shape: Sequence[int], sep: str = "×") -> str:
    """(1, 28, 28) -> '1×28×28'; () -> 'scalar'; -1 (any size, a dataset's spec) -> '?'.
    shapes.parse_shape reads a concrete one back."""
    return sep.join("?" if d == -1 else str(d) for d in shape) if len(shape) else "scalar"


def parse_size(text: str) -> int:
    """'2GiB', '500MB', '1.5g', '4096' -> bytes (fmt_bytes' inverse); ValueError otherwise."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text or "")
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"not a size: {text!r} (e.g. 2GiB, 500MB)")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def best_label(metric: str | None, value: float | None) -> str:
    if value is None or not metric:
        return "-"
    if not math.isfinite(value):
        return f"{metric} {value}"
    if metric == "accuracy":
        return f"acc {value * 100:.2f}%"
    return f"{metric} {value:.4g}"


def status_label(run: Any) -> str:
    """A RunInfo's status as `tui-nn runs` shows it (paused, failed (nan), ...)."""
    if run.status == "running" and run.paused:
        return "paused"
    if run.status == "failed" and run.failure_kind and run.failure_kind != "error":
        return f"failed ({run.failure_kind})"
    return run.status


def epochs_label(run: Any) -> str:
    """A RunInfo's epochs: '3/10', or '3' when the run's total is unknown."""
    return f"{run.epochs_done}/{run.epochs_total}" if run.epochs_total else str(run.epochs_done)


def summary_line(event: Any) -> str:
    """The last line of a run (a Finished event or record)."""
    where = f"; run directory {event.run_dir}" if event.run_dir else ""
    return (f"{event.status} after {event.epochs_done} epoch(s), {event.step} steps in "
            f"{fmt_duration(event.elapsed_s)}: best {event.metric} "
            f"{fmt_metric(event.metric, event.best_value)}, last "
            f"{fmt_metric(event.metric, event.last_value)}{where}")


def fmt_loss(value: float) -> str:
    """4 decimals, unless the loss has blown up (1e308 would print 309 digits)."""
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def epoch_line(e: Any, total: int | None, *, first: int | None = None,
               timing: bool = True) -> str:
    """The one line an epoch (an EpochMetrics event or record) reads as, in the headless
    console, the app's log and `watch`. ``first``: the first of several epochs this line stands
    for (fast epochs: one line, not a flood). A figure the loop did not give (0) is left out."""
    which = f"epochs {first + 1}–{e.epoch + 1}" if first is not None else f"epoch {e.epoch + 1}"
    parts = [f"{which}/{total}" if total else which,
             f"train_loss {fmt_loss(e.train_loss)}", f"val_loss {fmt_loss(e.val_loss)}",
             f"{e.metric} {fmt_metric(e.metric, e.value)}" + (" *" if e.is_best else "")]
    figures = [f"{e.epoch_time_s:.1f}s" if e.epoch_time_s else "",
               f"{e.samples_per_s:,.0f} samples/s" if e.samples_per_s else ""]
    if timing and any(figures):
        parts.append(f"({', '.join(f for f in figures if f)})")
    if getattr(e, "decoded", None) is not None:
        parts.append(f"output '{e.decoded}'")
    return " ".join(parts)
