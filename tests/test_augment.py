"""--augment: the spec, per-sample batched transforms, and training batches only."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import blobs_images
from typer.testing import CliRunner

from tui_nn.cli import app
from tui_nn.data.augment import AugmentError, Augmenter, parse_augment
from tui_nn.data.augment_spec import PRESETS
from tui_nn.engine import TrainConfig, Trainer
from tui_nn.engine import events as ev

runner = CliRunner()
CPU = torch.device("cpu")


def test_spec_round_trips_and_presets():
    full = "crop=2,flip,rotate=10,scale=0.1,jitter=0.2,blur=1,noise=0.1"
    assert str(parse_augment(full)) == full
    assert str(parse_augment(" rotate=10 , crop=2 ")) == "crop=2,rotate=10"
    assert str(parse_augment("digits")) == PRESETS["digits"]
    assert "flip" in str(parse_augment("photos"))
    assert parse_augment("") is None and parse_augment("none") is None
    assert parse_augment("rotate=0") is None  # nothing to do: no augmentation at all


@pytest.mark.parametrize("text,match", [
    ("rotat=3", "unknown transform 'rotat'.*preset: digits, photos"),
    ("crop=1.5", "not a whole number"),
    ("rotate", "rotate needs a value, e.g. rotate=10"),
    ("flip=1", "flip takes no value"),
    ("noise=-1", r"noise must be in 0..1"),
    ("rotate=nan", "rotate must be in"),
    ("crop=1,crop=2", "crop is given twice"),
])
def test_bad_specs(text, match):
    with pytest.raises(AugmentError, match=match):
        parse_augment(text)


def test_a_bad_spec_is_a_usage_error_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "cnn", "--augment", "spin=3", "--headless"])
    assert result.exit_code == 2 and "unknown transform 'spin'" in result.output
    result = runner.invoke(app, ["train", "diabetes", "--augment", "flip", "--headless"])
    assert result.exit_code == 2, result.output
    assert "--augment transforms images" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def _shifted(img: torch.Tensor, dx: int, dy: int, fill: float) -> torch.Tensor:
    """img (C, H, W) moved so that output pixel (y, x) shows input (y + dy, x + dx)."""
    _, h, w = img.shape
    out = torch.full_like(img, fill)
    out[:, max(0, -dy):min(h, h - dy), max(0, -dx):min(w, w - dx)] = \
        img[:, max(0, dy):min(h, h + dy), max(0, dx):min(w, w + dx)]
    return out


def test_crop_shifts_each_sample_by_whole_pixels_with_a_black_border():
    torch.manual_seed(0)
    mean, std = (0.5,), (0.25,)
    raw = torch.rand(16, 1, 9, 11)  # (B, C, H, W) pixels in [0, 1]
    x = (raw - 0.5) / 0.25
    out = Augmenter(parse_augment("crop=2"), mean, std, CPU)(x)
    black = (0 - 0.5) / 0.25
    shifts = set()
    for i in range(16):
        match = [(dx, dy) for dx in range(-2, 3) for dy in range(-2, 3)
                 if torch.allclose(out[i], _shifted(x[i], dx, dy, black), atol=1e-4)]
        assert len(match) == 1, i
        shifts.add(match[0])
    assert len(shifts) > 3  # each sample draws its own shift


def test_flip_mirrors_about_half_the_samples():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 6, 8)
    out = Augmenter(parse_augment("flip"), None, None, CPU)(x)
    same = [torch.allclose(o, i, atol=1e-5) for o, i in zip(out, x)]
    mirrored = [torch.allclose(o, i.flip(-1), atol=1e-5) for o, i in zip(out, x)]
    assert all(a != b for a, b in zip(same, mirrored))
    assert 16 < sum(mirrored) < 48


def test_rotation_differs_per_sample_and_keeps_the_centre():
    torch.manual_seed(0)
    one = torch.zeros(1, 1, 29, 29)
    one[..., 10:19, 14] = 1.0  # a vertical bar through the centre
    x = one.repeat(8, 1, 1, 1)  # (8, 1, 29, 29): eight copies of one image
    out = Augmenter(parse_augment("rotate=30"), None, None, CPU)(x)
    assert len({round(float((o - out[0]).abs().sum()), 3) for o in out}) == 8
    assert torch.allclose(out[:, 0, 14, 14], torch.ones(8), atol=1e-4)  # rotation about the centre


def test_photometric_transforms_keep_shape_and_range():
    torch.manual_seed(0)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.2, 0.2)
    raw = torch.rand(4, 3, 10, 10)
    x = (raw - torch.tensor(mean).view(1, 3, 1, 1)) / 0.2
    jittered = Augmenter(parse_augment("jitter=0.5"), mean, std, CPU)(x)
    back = jittered * 0.2 + torch.tensor(mean).view(1, 3, 1, 1)
    assert back.min() >= -1e-5 and back.max() <= 1 + 1e-5 and not torch.allclose(back, raw)
    flat = torch.full((2, 1, 7, 7), 0.3)
    assert torch.allclose(Augmenter(parse_augment("blur=2"), None, None, CPU)(flat), flat)
    blurred = Augmenter(parse_augment("blur=1"), None, None, CPU)(x)
    assert blurred.shape == x.shape and blurred.std() < x.std()  # smoother
    noisy = Augmenter(parse_augment("noise=0.1"), None, None, CPU)(x)
    assert 0.05 < float((noisy - x).std()) < 0.15


def test_training_batches_only_and_recorded(tmp_path, monkeypatch):
    seen: list[int] = []
    original = Augmenter.__call__

    def spy(self, x):
        seen.append(x.shape[0])
        return original(self, x)

    monkeypatch.setattr(Augmenter, "__call__", spy)
    events: list[ev.Event] = []
    cfg = TrainConfig(model="cnn", epochs=2, batch_size=64, threads=1, augment="rotate=10,crop=2",
                      run_dir=str(tmp_path / "run"), tensorboard=False)
    result = Trainer(cfg, events.append, dataset=blobs_images(n_train=200, n_val=50)).run()
    assert isinstance(result, ev.Finished), result
    assert seen == [64, 64, 64, 8] * 2  # every training step, never the 50 validation images
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert started.setup.endswith("augment crop=2,rotate=10 (training batches)")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["augment"] == "rotate=10,crop=2"


def test_the_augmentation_lesson_batch():
    from tui_nn.tui.screens.augment_view import N_IMAGES, augmented_batch

    state = torch.get_rng_state()
    before, after = augmented_batch("rotate=30", seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # the lesson leaves training's RNG alone
    assert before.shape == after.shape == (N_IMAGES, 28, 28)
    assert after.min() >= 0 and after.max() <= 1 and not torch.allclose(before, after)
    assert torch.equal(augmented_batch("rotate=30", seed=3)[1], after)  # r redraws by seed
    assert not torch.equal(augmented_batch("rotate=30", seed=4)[1], after)


def test_a_channels_last_batch_stays_channels_last():
    x = torch.rand(4, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    out = Augmenter(parse_augment("crop=1,blur=1"), None, None, CPU)(x)
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    plain = Augmenter(parse_augment("crop=1"), None, None, CPU)(torch.rand(4, 3, 8, 8))
    assert plain.is_contiguous()
