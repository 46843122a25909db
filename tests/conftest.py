import os
from pathlib import Path

# Generated datasets are cached; keep the tests' cache out of the user's home.
os.environ.setdefault("TUI_NN_CACHE", str(Path(__file__).parent.parent / ".pytest-cache-data"))


# Under pytest-xdist (pyproject's addopts: two workers), each worker and the processes its tests
# start train at one thread: two workers at torch's default of one thread per core would put
# four busy threads on a 2-core box, and torch's threads spin while they wait for each other.
if os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get("OMP_NUM_THREADS"):
    os.environ["OMP_NUM_THREADS"] = "1"
