"""SIGTERM, SIGHUP and SIGINT for a run that trains in this process's main thread (headless
`tui-nn train`): the first asks the run to stop after its step (it checkpoints and exits
128+n); if that step has not ended within the grace period ($TUI_NN_STOP_GRACE_S, 30 s by
default) the process ends anyway, keeping the last checkpoint, and so does a second SIGTERM or
SIGHUP at once (a second Ctrl-C raises SignalInterrupt in the main thread, as before).

Why a thread reading a wake-up pipe rather than the Python handler alone: Python runs a
handler only when the main thread comes back to the interpreter, and a step that never ends (a
forward stuck in a collective, a lock, a C loop that released the GIL) never does. The C-level
handler still writes the signal's number to the pipe, so the thread hears every signal.
Torch-free and UI-free.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from typing import Callable

GRACE_ENV = "TUI_NN_STOP_GRACE_S"
DEFAULT_GRACE_S = 30.0
_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP"))
                 if s is not None)
_QUIT = 0  # written to the pipe by __exit__: no signal has number 0


class SignalInterrupt(KeyboardInterrupt):
    """A real Ctrl-C, raised by one of our handlers: a plain KeyboardInterrupt under them came
    from the user's code (a model's forward, a dataset), an error of that code."""


def raised_by_user_code(exc: BaseException) -> bool:
    """Whether a SystemExit or KeyboardInterrupt is the user's code's (to report as its error)
    rather than a real Ctrl-C (to let through). Undecidable under Python's own SIGINT handler
    in the main thread: then it is taken as a Ctrl-C."""
    if isinstance(exc, SignalInterrupt):
        return False
    if isinstance(exc, SystemExit):
        return True
    return not (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler)


@contextlib.contextmanager
def marked_interrupts():
    """Ctrl-C raises SignalInterrupt meanwhile (main thread only), so that raised_by_user_code
    can tell it from the user's own KeyboardInterrupt."""
    def interrupt(signum: int, frame: object) -> None:  # noqa: ARG001
        raise SignalInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_grace_s() -> float:
    """$TUI_NN_STOP_GRACE_S in seconds (0 to a day); the default when unset or not that."""
    try:
        value = float(os.environ.get(GRACE_ENV, DEFAULT_GRACE_S))
    except ValueError:
        return DEFAULT_GRACE_S
    return value if math.isfinite(value) and 0 <= value <= 86400 else DEFAULT_GRACE_S


class StopOnSignals:
    """`with StopOnSignals(trainer.stop, give_up):` around the run. give_up(signum, why) is
    called from a thread when the run must end without its step (it should say so and
    os._exit); `received` lists the signals taken, for the exit status. Outside the main
    thread (tests driving a run from a thread) it installs nothing."""

    def __init__(self, stop: Callable[[], None], give_up: Callable[[int, str], None]) -> None:
        self._stop, self._give_up = stop, give_up
        self.received: list[int] = []
        self._interrupts = 0
        self._previous: dict[int, object] = {}
        self._pipe: tuple[int, int] | None = None
        self._old_wakeup = -1
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    def __enter__(self) -> "StopOnSignals":
        if threading.current_thread() is not threading.main_thread():
            return self
        read, write = os.pipe()
        os.set_blocking(write, False)
        self._pipe = (read, write)
        self._old_wakeup = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        for sig in _SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handler)
        self._thread = threading.Thread(target=self._watch, name="tui-nn-signals", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pipe is None:
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._old_wakeup)
        os.write(self._pipe[1], bytes([_QUIT]))
        self._thread.join()  # every signal before the quit byte is counted in `received`
        if self._timer is not None:
            self._timer.cancel()  # the run ended within the grace period
        for fd in self._pipe:
            os.close(fd)
        self._pipe = None

    def _handler(self, signum: int, frame: object) -> None:  # noqa: ARG002
        # The watcher thread does the work; this handler only replaces the default action
        # (death for SIGTERM/SIGHUP) and keeps a second Ctrl-C's old meaning.
        if signum == signal.SIGINT:
            self._interrupts += 1
            if self._interrupts > 1:
                raise SignalInterrupt

    def _watch(self) -> None:
        while True:
            for signum in os.read(self._pipe[0], 64):
                if signum == _QUIT:
                    return
                if signum in _SIGNALS:
                    self._take(signum)

    def _take(self, signum: int) -> None:
        self.received.append(signum)
        if len(self.received) == 1:
            self._stop()
            grace = stop_grace_s()
            why = (f"its step did not finish within {grace:g} s of {signal.Signals(signum).name}"
                   f" (${GRACE_ENV})")
            self._timer = threading.Timer(grace, self._give_up, (signum, why))
            self._timer.daemon = True
            self._timer.start()
        elif signum != signal.SIGINT:
            self._give_up(self.received[0], f"a second {signal.Signals(signum).name}")
