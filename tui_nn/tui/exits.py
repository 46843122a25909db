"""How the apps end: 128+signal after SIGTERM/SIGINT/SIGHUP (as a headless run and a shell
expect), 1 after an uncaught exception (Textual sets it), 0 after a quit.

SIGTERM and SIGINT go through the event loop, so the app stops its run (which checkpoints) and
restores the terminal before it exits. SIGHUP cannot: the terminal is gone and restoring it may
block forever, so the handler waits for the checkpoint and leaves with os._exit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Callable

from textual.app import App


def install_signal_exits(app: App, on_signal: Callable[[int], None],
                         on_hangup: Callable[[int, object], None] | None = None) -> None:
    """Route SIGTERM/SIGINT to on_signal(signum) on the event loop and SIGHUP to
    on_hangup(signum, frame) (a plain handler; by default: exit 128+SIGHUP at once). Does
    nothing in a headless (test) app."""
    if app.is_headless:
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, int(sig))
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    if hasattr(signal, "SIGHUP"):
        try:
            signal.signal(signal.SIGHUP, on_hangup or _hang_up)
        except ValueError:  # not the main thread
            pass


def _hang_up(signum: int, frame: object) -> None:
    os._exit(signal_code(signum))


def signal_code(signum: int) -> int:
    return 128 + signum


def run_app(app: App) -> int:
    """Run the app; its exit status (see the module docstring). The loop is ours rather than
    asyncio.run's so that, after a signal gave up a step that never ended, the process can end
    once the terminal is restored: asyncio.run would wait for the stuck thread for ever."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        app.run(loop=loop)
        text = getattr(app, "exit_text", "")
        if text:
            from tui_nn.textsafe import say  # it quotes a run directory's path
            say(text, sys.stderr)
        code = getattr(app, "return_code", 0)  # stand-ins in tests may not have one
        code = 0 if code is None else code
        if getattr(app, "step_abandoned", False):
            sys.stdout.flush()
            os._exit(code)
    finally:
        _close(loop)
    return code


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """What asyncio.run does after its coroutine: cancel what is left, then close."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    asyncio.set_event_loop(None)
    loop.close()
