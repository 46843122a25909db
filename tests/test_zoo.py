"""Every zoo model is built as the seed notes define it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from tui_nn.zoo import MODELS, get_model_spec

# Worked out by hand from the layer sizes in the seed notes.
PARAMS = {
    "linear": 2, "logistic": 2,
    "diabetes": (8 * 6 + 6) + (6 * 4 + 4) + (4 + 1),
    "curve": (10 + 10) + (10 + 1),
    "mlp": (784 * 512 + 512) + (512 * 256 + 256) + (256 * 128 + 128) + (128 * 64 + 64)
    + (64 * 10 + 10),
    "cnn": (10 * 25 + 10) + (20 * 10 * 25 + 20) + (320 * 10 + 10),
    "lenet": (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10),
}
OUT = {"linear": (2, 1), "logistic": (2, 1), "diabetes": (2, 1), "curve": (2, 1),
       "mlp": (2, 10), "cnn": (2, 10), "resnet": (2, 10), "lenet": (2, 10),
       "inception": (2, 10), "rnn": (2, 5, 4), "rnn-seq": (2, 4), "lstm": (2, 4), "gru": (2, 4),
       "gan": (2, 1)}  # the GAN's forward is its discriminator's logit


@pytest.mark.parametrize("name", list(MODELS))
def test_forward_on_default_input(name):
    spec = get_model_spec(name)
    torch.manual_seed(0)
    x = (torch.randint(0, 4, (2, *spec.input_shape)) if spec.input_dtype == torch.int64
         else torch.randn(2, *spec.input_shape))
    out = spec.build()(x)
    assert tuple(out.shape) == OUT[name]
    if name in ("logistic", "diabetes"):
        assert ((out > 0) & (out < 1)).all()  # probabilities for BCELoss


@pytest.mark.parametrize("name,count", PARAMS.items())
def test_parameter_counts_match_the_seed_layer_sizes(name, count):
    assert get_model_spec(name).parameter_count() == count
    assert sum(p.numel() for p in get_model_spec(name).build().parameters()) == count


def test_flatten_sizes_are_the_ones_the_notes_ask_about():
    assert get_model_spec("cnn").build().fc.in_features == 320 == 20 * 4 * 4
    assert get_model_spec("resnet").build().fc.in_features == 512 == 32 * 4 * 4
    assert get_model_spec("lenet").build().fc1.in_features == 400 == 16 * 5 * 5
    assert get_model_spec("inception").build().fc.in_features == 1408 == 88 * 4 * 4


def test_unknown_model_suggests_the_closest_name():
    with pytest.raises(KeyError, match="Did you mean 'lenet'"):
        get_model_spec("lenett")


def test_headless_layers_never_import_ui_libraries():
    code = ("import sys, tui_nn.engine, tui_nn.shapes, tui_nn.zoo, tui_nn.data, "
            "tui_nn.engine.trainer, tui_nn.zoo.registry; "
            "import pkgutil, importlib\n"
            "for pkg in ('tui_nn.engine', 'tui_nn.shapes', 'tui_nn.zoo', 'tui_nn.data'):\n"
            "    p = importlib.import_module(pkg)\n"
            "    for m in pkgutil.iter_modules(p.__path__):\n"
            "        importlib.import_module(pkg + '.' + m.name)\n"
            "bad = [m for m in ('textual', 'typer', 'rich', 'plotext', 'textual_plotext') "
            "if m in sys.modules]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_does_not_import_torch_or_textual():
    code = ("import sys; sys.argv=['tui-nn','--help']\n"
            "from tui_nn import cli\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, 'textual' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stderr.strip().splitlines()[-1] == "False False"


def test_the_torch_free_name_list_matches_the_registry():
    from tui_nn.zoo import MODELS
    from tui_nn.zoo.names import ZOO_NAMES

    assert list(ZOO_NAMES) == list(MODELS)
