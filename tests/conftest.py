import json
import os
from pathlib import Path

import pytest

# Generated datasets are cached; keep the tests' cache out of the user's home.
os.environ.setdefault("TUI_NN_CACHE", str(Path(__file__).parent.parent / ".pytest-cache-data"))


# Under pytest-xdist (pyproject's addopts: two workers), each worker and the processes its tests
# start train at one thread: two workers at torch's default of one thread per core would put
# four busy threads on a 2-core box, and torch's threads spin while they wait for each other.
if os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get("OMP_NUM_THREADS"):
    os.environ["OMP_NUM_THREADS"] = "1"


# Textual's Pilot waits after each key press (and each bare pause()) until the process's CPU
# time stops advancing, for at most a second. A process with a training thread never stops, so
# every key pressed during a run cost two full seconds. The tests wait on the condition they
# need (pilot_helpers.wait_for); pilot.press still returns only once the screen has processed
# the key. Busy, the wait now ends after IDLE_WAIT_S; idle, it ends as before (20 ms).
IDLE_WAIT_S = 0.1


def _cap_pilot_idle_wait() -> None:
    import textual.app
    import textual.pilot
    from textual._wait import wait_for_idle

    async def capped(min_sleep: float = 1 / 50, max_sleep: float = 1) -> None:
        await wait_for_idle(min_sleep, min(max_sleep, IDLE_WAIT_S))

    textual.app.wait_for_idle = textual.pilot.wait_for_idle = capped


_cap_pilot_idle_wait()


# The fast loop (`-m "not slow"`, README): besides the tests marked by hand, every test that
# took SLOW_S or more in the last full run (tests/durations.json, written by
# tests/update_durations.py) is slow.
SLOW_S = 1.0
_DURATIONS = Path(__file__).with_name("durations.json")


def pytest_collection_modifyitems(config, items):
    durations = json.loads(_DURATIONS.read_text()) if _DURATIONS.exists() else {}
    module_s: dict[str, float] = {}
    for item in items:
        took = durations.get(f"{item.location[0]}::{item.name}", 0.0)
        module_s[item.location[0]] = module_s.get(item.location[0], 0.0) + took
        if took >= SLOW_S:
            item.add_marker(pytest.mark.slow)
    # The heaviest modules first, each module's tests kept together (its module-scoped
    # fixtures are built once): xdist's worksteal hands each worker a contiguous share and
    # steals from the ends of the queues, so the last minutes are the lightest modules' short
    # tests, which balance the two workers, not a kill loop started late. Same order on every
    # worker (xdist requires it): a stable sort on the same file.
    items.sort(key=lambda item: -module_s[item.location[0]])
