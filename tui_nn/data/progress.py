"""Progress of a long decode (an image folder read once, into memory or into its cache): a line
with the count and an ETA every few seconds, and a stop that is heard between two images.

The engine hands a Progress in (its lines become the run's notices, its stop is the run's);
without one, a decode is silent and runs to its end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

from tui_nn.fmt import fmt_duration

from .base import DataError

T = TypeVar("T")
INTERVAL_S = 2.0  # at most one line per this many seconds; none for a decode shorter than it


class DecodeStopped(DataError):
    """The run was asked to stop while the images were being decoded; nothing was kept."""


@dataclass
class Progress:
    say: Callable[[str], None] = lambda text: None
    stopped: Callable[[], bool] = lambda: False
    interval_s: float | None = None  # None: INTERVAL_S

    def track(self, what: str, items: Iterable[T], total: int) -> Iterator[T]:
        """items, one at a time; "what: done/total (p%), ETA m:ss" said every interval_s (and
        once at the end when anything was said); DecodeStopped raised at a stop."""
        interval = INTERVAL_S if self.interval_s is None else self.interval_s
        start = last = time.monotonic()
        said = False
        for done, item in enumerate(items, 1):
            if self.stopped():
                raise DecodeStopped(f"stopped while {what}; nothing was kept")
            yield item
            now = time.monotonic()
            if now - last >= interval or (said and done == total):
                last, said = now, True
                eta = (now - start) / done * (total - done)
                self.say(f"{what}: {done:,}/{total:,} ({done / max(total, 1):.0%}), "
                         f"ETA {fmt_duration(eta)}")


SILENT = Progress()
