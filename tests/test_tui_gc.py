"""The app keeps long-lived objects (torch's import, a run's model and data) out of the cyclic
collector, without keeping garbage alive."""

from __future__ import annotations

import gc
import weakref

import pytest

from tui_nn.tui.bridge import freeze_long_lived


class Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _unfrozen():
    yield
    gc.unfreeze()


def test_freeze_takes_live_objects_out_of_collections():
    kept = Node()
    freeze_long_lived(collect=False)
    assert gc.get_freeze_count() > 0
    assert not any(o is kept for o in gc.get_objects())  # no collection walks it any more


def test_run_start_collects_garbage_before_freezing():
    garbage = Node()
    ref = weakref.ref(garbage)
    del garbage
    freeze_long_lived(collect=True)
    assert ref() is None  # collected, not frozen for the life of the process
    assert gc.get_freeze_count() > 0


def test_a_finished_runs_cycles_are_freed_at_the_next_run_start():
    earlier = Node()
    ref = weakref.ref(earlier)
    freeze_long_lived(collect=False)  # frozen while alive (the first run's model)
    del earlier  # the run ended: now garbage, but frozen
    gc.collect()
    assert ref() is not None  # a plain collection does not see frozen objects
    freeze_long_lived(collect=True)
    assert ref() is None
