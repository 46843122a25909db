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
    kw = {"workers": 0, **kw}
    cfg = TrainConfig("cnn", dataset=f"folder:{tree}", epochs=2, batch_size=8, threads=1,
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
            raise DataError(f"cannot read image {path}: truncated")
        return real(path, mode, size)

    monkeypatch.setattr(folder, "_decode", decode)
    with pytest.raises(DataError, match="truncated"):
        folder.load_folder(tree, memory_budget=1)
    assert not cache.exists() or not any(cache.iterdir())


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
