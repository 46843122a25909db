"""The run's metric history, kept where the training thread can append and the UI can read.

Plain Python (no textual, no torch): the bridge's worker thread appends under a lock; widgets
read a bounded summary. Every step's loss is kept raw (an ``array('d')``: 8 bytes a step) so
nothing is lost, but plots only ever see a fixed-size bucketed summary, so the cost of a redraw
does not grow with the length of the run.
"""

from __future__ import annotations

import math
import threading
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from tui_nn.fmt import higher_is_better

if TYPE_CHECKING:
    from tui_nn.runs.history import RecordedHistory

MAX_EXTRA_CURVES = 4  # a step plugin's scalars drawn beside the loss (the GAN has two)
_EXTRA_NAME_CHARS = 20


def extra_scalars(raw: Any) -> dict[str, float]:
    """A decoded StepMetrics' ``scalars`` (names inert from schema.decode) as at most
    MAX_EXTRA_CURVES names cut to fit, with a number each; anything else is dropped."""
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, float] = {}
    for name, value in raw.items():
        if len(out) == MAX_EXTRA_CURVES:
            break
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                out[name[:_EXTRA_NAME_CHARS]] = float(value)  # inert: schema.decode
            except OverflowError:  # an int too big for a float
                continue
    return out


@dataclass(frozen=True)
class Point:
    """One plotted point: the mean of a bucket of raw points, with its spread."""

    x: float
    y: float
    lo: float
    hi: float
    count: int


class BucketSeries:
    """An append-only series summarised into at most ``capacity`` buckets of equal count.

    When the buckets are full, neighbours are merged pairwise and each bucket then holds twice
    as many raw points: appending is O(1) amortised and memory and reads are O(capacity),
    whatever the length of the series. Each bucket keeps sum, min, max and the mean x."""

    def __init__(self, capacity: int = 1024) -> None:
        if capacity < 2 or capacity % 2:
            raise ValueError("capacity must be an even number ≥ 2")
        self.capacity = capacity
        self.width = 1  # raw points per full bucket
        self._sx: list[float] = []
        self._sy: list[float] = []
        self._lo: list[float] = []
        self._hi: list[float] = []
        self._n: list[int] = []
        self.count = 0
        self.last: tuple[float, float] | None = None

    def __len__(self) -> int:
        return len(self._n)

    def append(self, x: float, y: float) -> None:
        self.count += 1
        self.last = (x, y)
        if self._n and self._n[-1] < self.width:
            i = len(self._n) - 1
            self._sx[i] += x
            self._sy[i] += y
            self._n[i] += 1
            if y < self._lo[i]:
                self._lo[i] = y
            if y > self._hi[i]:
                self._hi[i] = y
            return
        if len(self._n) == self.capacity:
            self._compact()  # every bucket was full, so every merged one is full too
        self._sx.append(x)
        self._sy.append(y)
        self._lo.append(y)
        self._hi.append(y)
        self._n.append(1)

    def extend(self, xs: Iterable[float], ys: Iterable[float]) -> None:
        for x, y in zip(xs, ys):
            self.append(x, y)

    def _compact(self) -> None:
        sx, sy, lo, hi, n = self._sx, self._sy, self._lo, self._hi, self._n
        self._sx = [sx[i] + sx[i + 1] for i in range(0, len(n), 2)]
        self._sy = [sy[i] + sy[i + 1] for i in range(0, len(n), 2)]
        self._lo = [min(lo[i], lo[i + 1]) for i in range(0, len(n), 2)]
        self._hi = [max(hi[i], hi[i + 1]) for i in range(0, len(n), 2)]
        self._n = [n[i] + n[i + 1] for i in range(0, len(n), 2)]
        self.width *= 2

    def points(self, max_points: int | None = None) -> list[Point]:
        """The buckets as points, merged further (in groups of k) to at most max_points."""
        n = len(self._n)
        if n == 0:
            return []
        k = 1 if not max_points or n <= max_points else math.ceil(n / max_points)
        out = []
        for s in range(0, n, k):
            e = min(s + k, n)
            cnt = sum(self._n[s:e])
            out.append(Point(x=sum(self._sx[s:e]) / cnt, y=sum(self._sy[s:e]) / cnt,
                             lo=min(self._lo[s:e]), hi=max(self._hi[s:e]), count=cnt))
        return out


def ema(points: list[Point], smoothing: float) -> list[float]:
    """TensorBoard-style debiased exponential moving average, in units of raw steps.

    A point that summarises c raw steps advances the average by c steps as if each of them had
    the bucket's mean value, so the smoothing means the same thing however long the run is.
    With one raw step per point this is exactly TensorBoard's smoothing."""
    w = min(max(float(smoothing), 0.0), 0.999)
    if w == 0.0:
        return [p.y for p in points]
    out: list[float] = []
    last = 0.0
    seen = 0
    for p in points:
        if not math.isfinite(p.y):
            out.append(p.y)
            continue
        a = w ** p.count
        last = last * a + (1.0 - a) * p.y
        seen += p.count
        out.append(last / (1.0 - w ** seen))
    return out


@dataclass
class EpochRecord:
    epoch: int
    step: int
    train_loss: float
    val_loss: float
    value: float


class RunHistory:
    """Everything the curves need, appended from the training thread, read from the UI."""

    def __init__(self, capacity: int = 1024) -> None:
        self._lock = threading.Lock()
        self._capacity = capacity
        self.reset()

    def reset(self, metric: str = "accuracy") -> None:
        with self._lock:
            self.metric = metric
            self.steps = array("q")  # every step number (raw, for export and rebuilds)
            self.losses = array("d")  # every step's training loss
            self.train = BucketSeries(self._capacity)
            self.val_loss = BucketSeries(self._capacity)
            self.val_metric = BucketSeries(self._capacity)
            self.extra: dict[str, BucketSeries] = {}  # a step plugin's curves, by name
            self.epochs: list[EpochRecord] = []
            # Bumped on every append: widgets redraw only when theirs moved.
            self.train_version = 0
            self.val_version = 0

    def add_steps(self, first_step: int, losses: Sequence[float],
                  scalars: Mapping[str, float] | None = None) -> None:
        """Steps first_step, first_step + 1, ...; scalars: more values at the last of them
        (StepMetrics.scalars: the GAN's d_loss and g_loss, a loop's own metrics)."""
        with self._lock:
            for i, loss in enumerate(losses):
                step = first_step + i
                self.steps.append(step)
                self.losses.append(loss)
                self.train.append(step, loss)
            last = first_step + len(losses) - 1
            for name, value in (scalars or {}).items():
                series = self.extra.get(name)
                if series is None:
                    if len(self.extra) >= MAX_EXTRA_CURVES:
                        continue
                    series = self.extra[name] = BucketSeries(self._capacity)
                series.append(last, value)
            self.train_version += 1

    def add_epoch(self, epoch: int, step: int, train_loss: float, val_loss: float,
                  value: float) -> None:
        with self._lock:
            self.epochs.append(EpochRecord(epoch, step, train_loss, val_loss, value))
            self.val_loss.append(step, val_loss)
            self.val_metric.append(step, value)
            self.val_version += 1

    def load(self, recorded: "RecordedHistory") -> None:
        """Hold a run's recorded curves (``tui_nn.runs.history.load_history``) instead of what
        was here: a resumed run's earlier steps and epochs, so its curves continue."""
        epochs = [EpochRecord(e.epoch, e.step, e.train_loss, e.val_loss, e.value)
                  for e in recorded.epochs]
        self._replace(array("q", recorded.steps), array("d", recorded.losses), epochs,
                      recorded.metric or self.metric)

    def rewind(self, start_step: int, start_epoch: int, metric: str) -> None:
        """Forget the steps after ``start_step`` and the epochs from ``start_epoch`` on: a
        resumed session restarts from its checkpoint and trains them again. Called by the
        one thread that appends."""
        keep = bisect_right(self.steps, start_step)  # steps are in ascending order
        if keep == len(self.steps) and all(e.epoch < start_epoch for e in self.epochs):
            self.metric = metric  # nothing to cut (a stop checkpoints its last step)
            return
        self._replace(self.steps[:keep], self.losses[:keep],
                      [e for e in self.epochs if e.epoch < start_epoch], metric)

    def _replace(self, steps: array, losses: array, epochs: list[EpochRecord],
                 metric: str) -> None:
        # The summaries are built outside the lock: for a long run that takes a while, and
        # the UI thread takes the lock for every redraw.
        train = BucketSeries(self._capacity)
        train.extend(steps, losses)
        val_loss, val_metric = BucketSeries(self._capacity), BucketSeries(self._capacity)
        for e in epochs:
            val_loss.append(e.step, e.val_loss)
            val_metric.append(e.step, e.value)
        with self._lock:
            self.metric = metric
            # The recorded history holds no extra curves: they start again with new steps.
            self.extra = {}
            self.steps, self.losses, self.epochs = steps, losses, epochs
            self.train, self.val_loss, self.val_metric = train, val_loss, val_metric
            self.train_version += 1
            self.val_version += 1

    def best_epoch(self) -> EpochRecord | None:
        """The epoch with the best validation metric (the first, on ties), as the engine
        picks it (fmt.higher_is_better)."""
        with self._lock:
            epochs = list(self.epochs)
        finite = [e for e in epochs if math.isfinite(e.value)]
        if not finite:
            return None
        sign = -1.0 if higher_is_better(self.metric) else 1.0
        return min(finite, key=lambda e: (sign * e.value, e.epoch))

    def snapshot(self, max_points: int) -> "HistorySnapshot":
        """A small, consistent copy for one redraw (O(capacity), not O(steps))."""
        with self._lock:
            return HistorySnapshot(
                metric=self.metric,
                train=self.train.points(max_points),
                val_loss=self.val_loss.points(max_points),
                val_metric=self.val_metric.points(max_points),
                extra={name: s.points(max_points) for name, s in self.extra.items()},
                steps=self.train.count,
                last_step=int(self.train.last[0]) if self.train.last else 0,
            )


@dataclass(frozen=True)
class HistorySnapshot:
    metric: str
    train: list[Point]
    val_loss: list[Point]
    val_metric: list[Point]
    steps: int
    last_step: int
    extra: dict[str, list[Point]] = field(default_factory=dict)
