"""A patch used by several threads at once (the app's inspector and memory line trace side by
side): the first to enter applies it, the last to leave undoes it."""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator


class SharedPatch:
    def __init__(self, apply: Callable[[], None], undo: Callable[[], None],
                 lock: threading.Lock | threading.RLock | None = None) -> None:
        # apply and undo run under lock; apply decides for itself whether there is anything to
        # do (e.g. the real module is already imported), undo removes only what apply put.
        self._apply, self._undo = apply, undo
        self.lock = lock if lock is not None else threading.Lock()
        self.users = 0

    @contextlib.contextmanager
    def use(self) -> Iterator[None]:
        with self.lock:
            if self.users == 0:
                self._apply()
            self.users += 1
        try:
            yield
        finally:
            with self.lock:
                self.users -= 1
                if self.users == 0:
                    self._undo()
