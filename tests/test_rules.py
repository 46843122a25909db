"""Each rule said once (issue 27.5): the one home of each, and the forms its callers need."""

from __future__ import annotations

from tui_nn.fmt import fmt_bytes, fmt_bytes_pair


def test_fmt_bytes_long_short_and_places():
    assert [fmt_bytes(n) for n in (None, 5, 1536, 2**20 - 1, 612 * 2**20, 3 * 2**40)] == \
        ["-", "5 B", "1.5 KiB", "1024.0 KiB", "612.0 MiB", "3.0 TiB"]
    # short: the inspect --diff column ('A→B' in 80 columns), whole from 100 on
    assert [fmt_bytes(n, short=True) for n in (5, 480 * 1024, int(3.2 * 2**20), 2**30)] == \
        ["5B", "480K", "3.2M", "1.0G"]
    assert fmt_bytes(2 * 2**30, places=2) == "2.00 GiB" and fmt_bytes(612 * 2**20, places=0) \
        == "612 MiB"


def test_fmt_bytes_pair_speaks_the_unit_of_the_whole():
    assert fmt_bytes_pair(12 * 2**30, 80 * 2**30) == "12.0/80.0 GiB"
    assert fmt_bytes_pair(None, 8 * 2**30) == "?/8.0 GiB"
    assert fmt_bytes_pair(300 * 2**20, 512 * 2**20) == "300.0/512.0 MiB"


def test_format_shape_is_one_function_for_models_and_datasets():
    import tui_nn.data.adapt as adapt
    import tui_nn.shapes as shapes
    from tui_nn.fmt import format_shape

    assert shapes.format_shape is format_shape and adapt.format_shape is format_shape
    assert format_shape((1, 28, 28)) == "1×28×28" and format_shape(()) == "scalar"
    assert format_shape((3, -1, -1)) == "3×?×?"  # a dataset that takes any size
    assert format_shape([1, 5], sep="x") == "1x5"  # as typed


def test_higher_is_better_is_one_rule_for_the_trainer_run_and_the_app(tmp_path):
    from tui_nn import Run
    from tui_nn.data import tasks
    from tui_nn.fmt import higher_is_better
    from tui_nn.tui.history import RunHistory

    assert [higher_is_better(m) for m in ("accuracy", "val_acc", "val/f1", "top1", "AUC")] == \
        [True] * 5
    assert [higher_is_better(m) for m in ("mse", "val_loss", "loss", None, "")] == [False] * 5
    assert tasks.higher_is_better("classification") and not tasks.higher_is_better("regression")
    assert Run(tmp_path / "r", metric="f1").higher_is_better
    assert not Run(tmp_path / "s", metric="f1", mode="min").higher_is_better
    # The app's best epoch of a tui_nn.Run scored by f1 is the one Run itself picked.
    history = RunHistory()
    history.reset("f1")
    for epoch, value in enumerate((0.5, 0.8, 0.7)):
        history.add_epoch(epoch, epoch * 10, 1.0, 1.0, value)
    assert history.best_epoch().epoch == 1


def test_the_actions_a_run_takes_are_listed_once():
    from tui_nn.commands import control_cmd
    from tui_nn.engine import channel, controls

    assert control_cmd.ACTIONS is controls.ACTIONS and channel.ACTIONS is controls.ACTIONS


def test_the_run_files_are_named_once():
    from tui_nn.engine import rundir
    from tui_nn.runs import records

    assert (records.METRICS_FILE, records.CONFIG_FILE) == (rundir.METRICS_FILE, rundir.CONFIG_FILE)
    assert records.METRICS_FILE is rundir.METRICS_FILE


def test_a_field_role_on_resume_is_its_metadata():
    import pytest

    from tui_nn.engine.config import (CHANGEABLE_ON_RESUME, THIS_PROCESS, UNRECORDED,
                                      ConfigError, TrainConfig, fields_on_resume,
                                      requested_fields, resume_config)

    assert fields_on_resume("fixed") == ("model", "dataset", "batch_size", "optimizer",
                                         "momentum", "weight_decay", "schedule", "seed")
    assert set(UNRECORDED) <= set(THIS_PROCESS) <= set(CHANGEABLE_ON_RESUME)
    assert {"device", "workers", "memory_budget"} <= set(THIS_PROCESS) - set(UNRECORDED)
    saved = TrainConfig("linear", dataset="line", epochs=2, batch_size=8, lr=0.1)
    # How this process caches decoded images is its own: a resume may say (it was refused).
    cfg, changes = resume_config(saved, {"memory_budget": "2GiB", "epochs": 3}, "runs/x", 2,
                                 True)
    assert changes == {"memory_budget": ["", "2GiB"], "epochs": [2, 3]}
    assert cfg.run_dir == "runs/x" and cfg.memory_budget == "2GiB"
    with pytest.raises(ConfigError, match="--batch-size 4"):
        resume_config(saved, {"batch_size": 4}, "runs/x", 1, False)
    assert "run_dir" not in requested_fields(TrainConfig("linear", run_dir="elsewhere"))


def test_a_size_reads_the_same_for_every_flag():
    import pytest

    from tui_nn.fmt import parse_size
    from tui_nn.shapes.memory import MemoryUsageError, parse_bytes

    for text in ("80GiB", "24 GB", "512MiB", "1.5TiB", "4096", "8g", "500k"):
        assert parse_bytes(text) == parse_size(text)  # --device-memory as --memory-budget
    assert parse_bytes("8g") == 8 * 2**30  # a bare unit is binary, as fmt_bytes prints
    for text in ("0", "0GiB", "lots", ""):
        with pytest.raises(MemoryUsageError):
            parse_bytes(text)
