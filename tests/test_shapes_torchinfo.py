"""torchinfo as an oracle: on torchvision models, every module call's output shape and the
parameter totals agree with ours (torchinfo runs the real model on CPU; we trace on meta)."""

from __future__ import annotations

import pytest
import torch

torchinfo = pytest.importorskip("torchinfo")
torchvision = pytest.importorskip("torchvision")

from tui_nn.shapes import inspect_model  # noqa: E402

MODELS = {
    "resnet18": (3, 64, 64),
    "vgg11": (3, 64, 64),
    "mobilenet_v3_small": (3, 64, 64),
}


def _their_rows(summary):
    """(class name, output shape) per module call, in call order, root included."""
    rows = []
    for layer in summary.summary_list:
        shape = layer.output_size
        if shape and isinstance(shape[0], (list, tuple)):
            shape = shape[0]  # several outputs: torchinfo keeps the first
        rows.append((layer.class_name, tuple(shape)))
    return rows


def _cpu_model(name):
    """Real CPU weights, zeros: torchvision's random init of VGG alone takes seconds, and
    uninitialised memory (denormals) slows torchinfo's real forward; shapes ignore values."""
    with torch.device("meta"):
        model = getattr(torchvision.models, name)(weights=None)
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for t in (*model.parameters(), *model.buffers()):
            t.zero_()
    return model


@pytest.mark.parametrize("name", list(MODELS))
def test_shapes_and_parameters_agree_with_torchinfo(name):
    model = _cpu_model(name)
    sample = MODELS[name]
    theirs = torchinfo.summary(model, input_size=(1, *sample), depth=100, verbose=0)
    ours = inspect_model(model, sample)
    assert ours.ok, ours.diagnosis
    assert ours.totals.params == theirs.total_params
    assert ours.totals.params_trainable == theirs.trainable_params
    our_rows = [(r.type, r.output_shapes[0] if r.output_shapes else ())
                for r in ours.all_rows if r.kind == "module"]
    assert our_rows == _their_rows(theirs)
    # and ours shows the flatten torchinfo cannot see
    assert any(r.type == "torch.flatten" for r in ours.all_rows)
    assert all(c.ok for c in ours.checks) and ours.checks


def test_resnet_from_source_on_meta_matches_torchinfo():
    ours = inspect_model("torchvision.models:resnet18", "3x64x64")
    theirs = torchinfo.summary(_cpu_model("resnet18"), input_size=(1, 3, 64, 64), depth=100,
                               verbose=0)
    assert ours.totals.params == theirs.total_params == 11_689_512
    (check,) = ours.checks
    assert check.text == "Linear(512) ← 512 × 1 × 1 = 512 ✓"
    fc_rows = [r for r in ours.all_rows if r.path == "fc"]
    assert fc_rows[0].mult_adds == 512 * 1000


def test_frozen_parameters_agree_with_torchinfo():
    model = _cpu_model("resnet18")
    for p in model.layer1.parameters():
        p.requires_grad_(False)
    theirs = torchinfo.summary(model, input_size=(1, 3, 64, 64), verbose=0)
    ours = inspect_model(model, "3x64x64")
    assert ours.totals.params_frozen == theirs.total_params - theirs.trainable_params > 0
