"""Image folders over the memory budget (issue 29): decoded once into a uint8 cache file and
streamed from it by batch; a changed tree gets a new cache; a failed decode leaves none."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from tui_nn.cli import app
from tui_nn.data import folder
from tui_nn.data.base import DataError
from tui_nn.engine import TrainConfig, Trainer
from tui_nn.engine import events as ev

runner = CliRunner()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TUI_NN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "folders"


def _write_tree(root, side: int = 28):
    """30 noisy RGB side×side images, a bright band per class (no channel is constant: a
    constant one has std 0, and its normalised values magnify any rounding of the mean)."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    for c, name in enumerate(("ant", "bee", "cat")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            pixels = (rng.random((side, side, 3)) * 150).astype(np.uint8)  # (H, W, C)
            pixels[c * 9:c * 9 + 9] += 100
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def tree(tmp_path):
    return _write_tree(tmp_path / "rgb")


def _run(tree, **kw) -> tuple[Trainer, list]:
    events: list = []
    kw = {"workers": 0, "epochs": 2, **kw}
    cfg = TrainConfig("cnn", dataset=f"folder:{tree}", batch_size=8, threads=1,
                      save=False, lr=0.05, **kw)
    trainer = Trainer(cfg, events.append)
    trainer.run()
    return trainer, events


def _epochs(events) -> list[tuple]:
    return [(e.train_loss, e.val_loss, e.value) for e in events
            if isinstance(e, ev.EpochMetrics)]


def test_a_tree_over_the_budget_trains_from_its_cache_like_in_memory(tree, cache):
    cached, events = _run(tree, memory_budget="10KB")  # 30 × 3×28×28 = 70 KB decoded
    assert cached.stream is not None and cached.pixel_norm is not None
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert "decoded once into" in started.setup and "memory budget" in started.setup
    files = list(cache.glob("*.npy"))
    assert len(files) == 1 and files[0].stat().st_size > 30 * 3 * 28 * 28
    in_memory, plain = _run(tree)
    assert in_memory.stream is None
    for a, b in zip(_epochs(events), _epochs(plain)):  # the same batches; mean/std summed
        assert a == pytest.approx(b, rel=1e-5)  # in float64 chunks rather than float32
    again, events = _run(tree, memory_budget="10KB", workers=1)
    assert "read from" in next(e for e in events if isinstance(e, ev.RunStarted)).setup
    assert list(cache.glob("*.npy")) == files


def test_a_changed_tree_gets_a_new_cache_and_the_stale_one_goes(tree, cache):
    folder.load_folder(tree, memory_budget=1)
    (old,) = cache.glob("*.npy")
    image = next((tree / "bee").iterdir())
    os.utime(image, ns=(1, 1))  # same bytes, another mtime
    ds = folder.load_folder(tree, memory_budget=1)
    (new,) = cache.glob("*.npy")
    assert new != old and "decoded once" in ds.note


def test_a_decode_that_fails_leaves_no_cache(tree, cache, monkeypatch):
    calls = {"n": 0}
    real = folder._decode

    def decode(path, mode, size):
        calls["n"] += 1
        if calls["n"] == 12:
            raise RuntimeError("the decoder broke")
        return real(path, mode, size)

    monkeypatch.setattr(folder, "_decode", decode)
    with pytest.raises(RuntimeError, match="broke"):
        folder.load_folder(tree, memory_budget=1)
    assert not cache.exists() or not any(cache.iterdir())


def _spoil(tree):
    """One file that is no image at all, one whose header reads but whose pixels are cut."""
    (tree / "ant" / "junk.png").write_bytes(b"not an image at all")
    whole = (tree / "bee" / "3.png").read_bytes()
    (tree / "bee" / "3.png").write_bytes(whole[:len(whole) // 2])
    return {"junk.png", "3.png"}


def _notices(events) -> list[str]:
    return [e.message for e in events if isinstance(e, ev.Notice)]


@pytest.mark.parametrize("budget", ["", "10KB"], ids=["in-memory", "cache"])
def test_unreadable_images_are_skipped_counted_and_listed(tree, cache, budget):
    bad = _spoil(tree)
    trainer, events = _run(tree, memory_budget=budget, epochs=1)
    assert isinstance(events[-1], ev.Finished)
    assert trainer.dataset.n_train + trainer.dataset.n_val == 29  # 30 + junk - 2 skipped
    (notice,) = [n for n in _notices(events) if "unreadable" in n]
    assert notice.startswith("skipped 2 unreadable images") and all(b in notice for b in bad)
    assert all(notice.count(str(b)) == 1 for b in bad)  # PIL's own words repeat the path
    if budget:  # a later run reads the cache and still says which images it lacks
        _, again = _run(tree, memory_budget=budget, epochs=1)
        assert "read from" in next(e for e in again if isinstance(e, ev.RunStarted)).setup
        assert [n for n in _notices(again) if "unreadable" in n] == [notice]


@pytest.mark.parametrize("budget", [[], ["--memory-budget", "10KB"]], ids=["in-memory", "cache"])
def test_strict_stops_at_an_unreadable_image_with_exit_2(tree, cache, tmp_path, budget):
    _spoil(tree)
    result = runner.invoke(app, ["train", "cnn", "--dataset", f"folder:{tree}", "--strict",
                                 "--headless", "--epochs", "1", "--run-dir",
                                 str(tmp_path / "runs" / "one"), *budget])
    assert result.exit_code == 2, result.output
    assert "cannot read image" in result.output and "--strict" in result.output
    assert "Traceback" not in result.output
    assert not cache.exists() or not any(cache.iterdir())
    assert not (tmp_path / "runs").exists()


def test_a_full_disk_while_caching_leaves_nothing_and_says_so(tree, cache, monkeypatch):
    import errno

    from tui_nn import fsio
    real = fsio._WholeWrites.write
    written = {"n": 0}

    def write(self, data):
        written["n"] += len(memoryview(data).cast("B"))
        if written["n"] > 20_000:  # a disk that fills a third of the way in
            self.error = OSError(errno.ENOSPC, "No space left on device")
            raise self.error
        return real(self, data)

    monkeypatch.setattr(fsio._WholeWrites, "write", write)
    with pytest.raises(DataError, match="no space left.*no partial cache was left"):
        folder.load_folder(tree, memory_budget=1)
    assert written["n"] > 20_000 and not any(cache.iterdir())


def test_a_tree_is_never_refused_for_its_size_before_the_cache_is_chosen(tree, cache,
                                                                         monkeypatch):
    monkeypatch.setattr(folder, "default_budget", lambda: 1)  # a machine "out of memory"
    ds = folder.load_folder(tree, as_uint8=True)  # no budget given: the machine's
    assert getattr(ds, "streamed", False) and "decoded once" in ds.note
    assert not hasattr(folder, "_MAX_ELEMENTS")


def test_a_long_decode_says_how_far_it_is_with_an_eta(tree, cache, monkeypatch):
    from tui_nn.data import progress
    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)  # a line per image
    for budget in ("", "10KB"):
        _, events = _run(tree, memory_budget=budget, epochs=1)
        lines = [e for e in events if isinstance(e, ev.Notice) and e.source == "data"]
        started = next(i for i, e in enumerate(events) if isinstance(e, ev.RunStarted))
        assert lines and all(events.index(e) < started for e in lines)
        assert "30/30 (100%), ETA 00:00" in lines[-1].message
        assert ("into the cache" in lines[-1].message) == bool(budget)


def test_ctrl_c_while_decoding_into_the_cache_leaves_no_half_cache(tree, cache, tmp_path):
    import signal
    import subprocess
    import sys
    import time
    script = tmp_path / "slow.py"  # the CLI, with a decode slow enough to be interrupted
    script.write_text(
        "import sys, time\n"
        "from tui_nn.data import folder, progress\n"
        "progress.INTERVAL_S = 0.0\n"
        "real = folder._decode\n"
        "def slow(*a, **k):\n"
        "    time.sleep(0.3)\n"
        "    return real(*a, **k)\n"
        "folder._decode = slow\n"
        "from tui_nn.cli import main\n"
        "sys.argv = ['tui-nn'] + sys.argv[1:]\n"
        "main()\n")
    env = {**os.environ, "TUI_NN_CACHE": str(cache.parent), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script), "train", "cnn", "--dataset", f"folder:{tree}",
         "--memory-budget", "10KB", "--headless", "--epochs", "1", "--run-dir",
         str(tmp_path / "runs" / "one")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env)
    deadline = time.monotonic() + 120
    line = ""
    while "into the cache" not in line and time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line or proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "stopped while decoding" in err and "Traceback" not in err
    assert not any(cache.iterdir())  # neither the cache nor its temporary file


def test_a_bad_memory_budget_exits_2(tree):
    result = runner.invoke(app, ["train", "cnn", "--dataset", f"folder:{tree}",
                                 "--memory-budget", "lots"])
    assert result.exit_code == 2 and "--memory-budget" in result.output


def test_a_cached_tree_is_cropped_per_batch_to_the_zoo_models_input(tmp_path, cache):
    big = _write_tree(tmp_path / "big", side=32)  # cnn takes 28×28: centre-cropped
    cached, events = _run(big, memory_budget="10KB")
    assert cached.stream is not None and cached.dataset.input_shape == (3, 28, 28)
    _, plain = _run(big)
    assert len(_epochs(events)) == 2
    for a, b in zip(_epochs(events), _epochs(plain)):
        assert a == pytest.approx(b, rel=1e-5)


def test_a_decode_in_worker_processes_writes_the_same_cache(tree, cache, monkeypatch):
    import numpy as np

    from tui_nn.data import image_cache
    one = folder.load_folder(tree, memory_budget=1)
    (path,) = cache.glob("*.npy")
    alone = np.load(path).copy()
    path.unlink()
    monkeypatch.setattr(image_cache, "PARALLEL_MIN", 1)  # a pool from the first image on
    pooled = folder.load_folder(tree, memory_budget=1)
    assert np.array_equal(np.load(path), alone) and pooled.mean == one.mean


def test_the_cache_is_read_ahead_by_a_thread_that_ends_with_the_run(tree, cache):
    import threading
    events: list = []
    cfg = TrainConfig("cnn", dataset=f"folder:{tree}", epochs=2, batch_size=4, threads=1,
                      save=False, memory_budget="10KB", report_interval_s=0.0)
    trainer = Trainer(cfg, lambda e: (events.append(e), isinstance(e, ev.StepMetrics)
                                      and e.step == 2 and trainer.stop()))
    trainer.run()
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert "read ahead by a background thread" in started.setup
    assert events[-1].status == "stopped" and trainer.state.step == 2  # stopped mid-epoch
    assert not any(t.name == "tui-nn-read-ahead" for t in threading.enumerate())


def test_a_cached_tree_resumes_mid_epoch_with_the_same_batches(tree, cache, tmp_path):
    from tui_nn.runs.history import load_history

    def history(run):
        return [(e.epoch, e.step, e.train_loss, e.val_loss) for e in load_history(run).epochs]

    def config(run, **kw):
        return TrainConfig("cnn", dataset=f"folder:{tree}", epochs=2, batch_size=4, threads=1,
                           lr=0.05, seed=1, memory_budget="10KB", run_dir=str(run), **kw)
    Trainer(config(tmp_path / "straight")).run()
    run = tmp_path / "resumed"
    trainer = Trainer(config(run, report_interval_s=0.0), lambda e: isinstance(
        e, ev.StepMetrics) and e.step >= 8 and trainer.stop())
    assert trainer.run().step == 8  # mid-epoch 2 (6 steps an epoch)
    Trainer(TrainConfig("cnn", memory_budget="10KB"), resume_from=run).run()
    a, b = history(tmp_path / "straight"), history(run)
    assert [x[:2] for x in a] == [x[:2] for x in b] == [(0, 6), (1, 12)]
    for x, y in zip(a, b):
        assert y[2:] == pytest.approx(x[2:], rel=1e-5)


def test_a_cached_tree_under_two_gloo_processes_matches_one_process(tree, cache, tmp_path):
    """Each rank reads its slice of every global batch from the one cache file (the first
    rank to finish the decode renames it into place; the other's equal copy replaces it)."""
    from helpers import epoch_records_of_train

    env = {"TUI_NN_CACHE": str(cache.parent)}
    common = ["cnn", "--dataset", f"folder:{tree}", "--epochs", "2", "--batch-size", "8",
              "--memory-budget", "10KB", "--headless"]

    def train(run: str, *more: str) -> list[dict]:
        return epoch_records_of_train(tmp_path / run, [*common, *more], env)

    two, one = train("two", "--nproc-per-node", "2"), train("one")
    assert len(one) == len(two) == 2 and len(list(cache.glob("*.npy"))) == 1
    for a, b in zip(one, two):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-5
        assert abs(a["val_loss"] - b["val_loss"]) < 1e-5 and a["value"] == b["value"]
