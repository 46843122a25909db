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
