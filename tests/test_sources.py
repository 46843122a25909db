"""Model sources: zoo names, Python files, importable factories — and one-line errors."""

from __future__ import annotations

import textwrap

import pytest
import torch
from torch import nn

from tui_nn.zoo.sources import LoadedModel, SourceError, load_model

MODEL_FILE = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return self.fc(x)


class Net(nn.Module):
    input_shape = (1, 8, 8)

    def __init__(self, channels=1, classes=10):
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, classes)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


class Fails(nn.Module):
    def __init__(self):
        super().__init__()
        raise ValueError("width must be even")


def build(width=3):
    return nn.Sequential(nn.Linear(width, 2))


def not_a_model():
    return 42


NUMBER = 7
'''


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "models.py"
    path.write_text(MODEL_FILE)
    return path


def test_zoo_name_builds_on_meta_with_its_defaults():
    loaded = load_model("lenet")
    assert isinstance(loaded, LoadedModel)
    assert loaded.name == "lenet" and loaded.spec.name == "lenet"
    assert loaded.default_input_shapes == [(1, 32, 32)]
    assert loaded.dtype == torch.float32
    assert all(p.device.type == "meta" for p in loaded.model.parameters())
    assert load_model("rnn").dtype == torch.int64


def test_zoo_on_cpu_when_asked():
    loaded = load_model("cnn", device="cpu")
    assert loaded.model.fc.weight.device.type == "cpu"


def test_unknown_zoo_name_suggests():
    with pytest.raises(SourceError, match=r"unknown model 'lenett'.*Did you mean 'lenet'"):
        load_model("lenett")


def test_file_with_class_and_arguments(model_file):
    loaded = load_model(f"{model_file}:Net(3, classes=5)")
    assert loaded.name == f"{model_file}:Net"
    assert loaded.model.conv.in_channels == 3 and loaded.model.fc.out_features == 5
    assert loaded.model.fc.weight.device.type == "meta"
    assert loaded.default_input_shapes == [(1, 8, 8)]  # the class declares input_shape
    assert loaded.spec is None


def test_file_arguments_from_the_api(model_file):
    loaded = load_model(f"{model_file}:Net", args=(2,), kwargs={"classes": 3})
    assert loaded.model.conv.in_channels == 2 and loaded.model.fc.out_features == 3


def test_factory_function_in_file(model_file):
    loaded = load_model(f"{model_file}:build(width=6)")
    assert isinstance(loaded.model, nn.Sequential) and loaded.model[0].in_features == 6


def test_file_without_class_needs_one_when_ambiguous(model_file):
    with pytest.raises(SourceError, match=r"several nn.Module classes \(Block, Net, Fails\)"):
        load_model(str(model_file))


def test_file_with_a_single_class(tmp_path):
    path = tmp_path / "single.py"
    path.write_text("from torch import nn\nclass Only(nn.Module):\n"
                    "    def __init__(self):\n        super().__init__()\n"
                    "        self.l = nn.Linear(2, 2)\n")
    assert load_model(str(path)).name == f"{path}:Only"


def test_missing_file():
    with pytest.raises(SourceError, match=r"model file not found: nowhere/model.py"):
        load_model("nowhere/model.py:Net")


def test_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import torch\n\nclass Net(:\n    pass\n")
    with pytest.raises(SourceError) as info:
        load_model(f"{path}:Net")
    message = str(info.value)
    assert f"{path}:3: syntax error" in message and "\n" not in message


def test_file_that_raises_on_import_names_the_line(tmp_path):
    path = tmp_path / "raises.py"
    path.write_text("x = 1\nimport definitely_not_a_module\n")
    with pytest.raises(SourceError, match=r"raises.py:2: running the file raised "
                                          r"ModuleNotFoundError"):
        load_model(f"{path}:Net")


def test_class_not_found_suggests(model_file):
    with pytest.raises(SourceError, match=r"has no 'Nett'. Did you mean 'Net'\?"):
        load_model(f"{model_file}:Nett")


def test_class_not_found_lists_the_classes(model_file):
    with pytest.raises(SourceError, match=r"has no 'Zebra'. nn.Module classes there: "
                                          r"Block, Net, Fails"):
        load_model(f"{model_file}:Zebra")


def test_constructor_raising(model_file):
    with pytest.raises(SourceError, match=r"^Fails\(\) raised ValueError: width must be even$"):
        load_model(f"{model_file}:Fails")


def test_constructor_bad_arguments(model_file):
    with pytest.raises(SourceError, match=r"Net\(1, 2, 3\) raised TypeError"):
        load_model(f"{model_file}:Net(1, 2, 3)")


def test_not_a_module(model_file):
    with pytest.raises(SourceError, match=r"returned int, not an nn.Module"):
        load_model(f"{model_file}:not_a_model")
    with pytest.raises(SourceError, match=r"NUMBER is not an nn.Module class or factory \(it is "
                                          r"a value of type int\)"):
        load_model(f"{model_file}:NUMBER")


def test_constructor_arguments_must_be_literals(model_file):
    with pytest.raises(SourceError, match=r"use Python literals"):
        load_model(f"{model_file}:Net(__import__('os'))")


def test_importable_factory_with_weights_none():
    loaded = load_model("torchvision.models:resnet18(weights=None, num_classes=7)")
    assert loaded.model.fc.out_features == 7
    assert loaded.model.fc.weight.device.type == "meta"
    assert loaded.default_input_shapes == [(3, 224, 224)]
    assert load_model("torchvision.models:inception_v3(weights=None, init_weights=False)") \
        .default_input_shapes == [(3, 299, 299)]


def test_dotted_path_without_colon():
    assert load_model("torchvision.models.resnet18").name == "torchvision.models:resnet18"


def test_module_not_importable():
    with pytest.raises(SourceError, match=r"cannot import 'no_such_pkg.models': no module named "
                                          r"'no_such_pkg'"):
        load_model("no_such_pkg.models:Net")


def test_attribute_missing_in_package():
    with pytest.raises(SourceError, match=r"'torchvision.models' has no 'resnet19'. Did you mean"):
        load_model("torchvision.models:resnet19")


def test_zoo_takes_no_arguments():
    with pytest.raises(SourceError, match="takes no constructor arguments"):
        load_model("cnn(3)")


def test_constructor_that_fails_on_meta_is_built_on_cpu(tmp_path):
    path = tmp_path / "valuey.py"
    path.write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(2, 2)
                if self.fc.weight.abs().sum().item() < 0:  # reads a value: no meta
                    raise AssertionError
    """))
    loaded = load_model(f"{path}:Net")
    assert loaded.model.fc.weight.device.type == "cpu"
    assert loaded.notes and "built on CPU" in loaded.notes[0]


def test_edited_file_is_read_again(tmp_path):
    path = tmp_path / "edit.py"
    path.write_text("from torch import nn\ndef build():\n    return nn.Linear(2, 3)\n")
    assert load_model(f"{path}:build").model.out_features == 3
    path.write_text("from torch import nn\ndef build():\n    return nn.Linear(2, 5)\n")
    assert load_model(f"{path}:build").model.out_features == 5


def test_empty_source():
    with pytest.raises(SourceError, match="empty model source"):
        load_model("  ")
