"""A user's own data and models (issue 14): image folders of any channel count, heads sized to
the data, outputs that cannot fit stopped before the run with the fix, binary logits."""

from __future__ import annotations

import json

import pytest
import torch
from data_helpers import write_csv, write_image_tree
from torch import nn
from typer.testing import CliRunner

from tui_nn.cli import app
from tui_nn.data import load_dataset
from tui_nn.data import tasks
from tui_nn.engine import TrainConfig, Trainer
from tui_nn.engine import events as ev
from tui_nn.data.model_fit import FitError, check_output_fits, ends_in_probabilities

runner = CliRunner()
IMAGE_MODELS = ("mlp", "cnn", "resnet", "lenet", "inception")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    classes = {"ant": 4, "bee": 4, "cat": 4}
    return {
        1: write_image_tree(root / "gray", classes, mode="L", size=(28, 28)),
        3: write_image_tree(root / "rgb", classes, mode="RGB", size=(28, 28)),
    }


def _standard_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    return torch.empty(shape).stride()


@pytest.mark.parametrize("channels", [1, 3])
def test_folder_images_are_nchw_with_standard_strides(folders, channels):
    ds = load_dataset(f"folder:{folders[channels]}")
    for x in (ds.train_x, ds.val_x):
        assert x.shape[1:] == (channels, 28, 28)
        # At one channel .is_contiguous() is True even for channels_last strides: compare them.
        assert x.stride() == _standard_strides(tuple(x.shape))
        assert x[:2].stride() == _standard_strides((2, channels, 28, 28))


def _train(model: str, dataset: str, **options) -> tuple[Trainer, list[ev.Event]]:
    events: list[ev.Event] = []
    cfg = TrainConfig(model=model, dataset=dataset, epochs=1, batch_size=8, save=False,
                      threads=1, **options)
    trainer = Trainer(cfg, events.append)
    trainer.run()
    return trainer, events


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_every_zoo_image_model_trains_on_a_folder(folders, name, channels):
    trainer, events = _train(name, f"folder:{folders[channels]}")
    assert isinstance(events[-1], ev.Finished), events[-1]
    assert events[-1].step >= 1
    first = next(m for m in trainer.model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert getattr(first, "in_channels", None) in (None, channels)
    if isinstance(first, nn.Linear):  # the MLP: C × 28 × 28 features
        assert first.in_features == channels * 784
    last = [m for m in trainer.model.modules() if isinstance(m, nn.Linear)][-1]
    assert last.out_features == 3
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert started.setup.startswith("3 classes: head Linear(")


def test_zoo_head_sized_to_the_classes_and_recorded(tmp_path):
    classes = {f"c{i:02d}": 2 for i in range(12)}
    root = write_image_tree(tmp_path / "twelve", classes, mode="L", size=(28, 28))
    result = runner.invoke(app, ["train", "mlp", "--dataset", f"folder:{root}", "--epochs", "1",
                                 "--headless", "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    first_line = result.output.splitlines()[0]
    assert "12 classes: head Linear(64, 12), CrossEntropyLoss" in first_line
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["num_classes"] == 12 and config["loss"] == "CrossEntropyLoss"
    assert config["labels"] == list(classes)


NETS = '''
import torch
from torch import nn

class Ten(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 26 * 26, 10)
    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).view(x.size(0), -1))

class Logits(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.b = nn.Linear(16, 1)
    def forward(self, x):
        return self.b(torch.relu(self.a(x)))

class TwoOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 2)
    def forward(self, x):
        return self.fc(x)
'''


@pytest.mark.parametrize("net,dataset,fragment", [
    ("Ten", "folder:{gray}", "Ten ends in Linear(2704, 10) but folder:gray has 3 classes: "
                             "use nn.Linear(2704, 3)"),
    ("TwoOut", "diabetes", "TwoOut ends in Linear(8, 2) but diabetes is binary (one output per "
                           "sample, P(class 1)): use nn.Linear(8, 1)"),
])
def test_a_model_that_does_not_fit_stops_before_the_run(folders, tmp_path, monkeypatch, net,
                                                        dataset, fragment):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets.py").write_text(NETS)
    dataset = dataset.format(gray=folders[1])
    result = runner.invoke(app, ["train", f"nets.py:{net}", "--dataset", dataset,
                                 "--epochs", "1", "--headless"])
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_the_suggested_fix_makes_the_model_fit(folders):
    ds = load_dataset(f"folder:{folders[1]}")
    x, y = ds.train_x[:2], ds.train_y[:2]

    def net(out_features: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(2704, out_features))

    with pytest.raises(FitError, match=r"use nn.Linear\(2704, 3\)"):
        check_output_fits(net(10), x, y, ds)
    fit = check_output_fits(net(3), x, y, ds)
    assert fit.loss_task == "classification"


def test_regression_width_is_checked():
    ds = load_dataset("curve")
    with pytest.raises(FitError, match=r"1 regression target per sample: use nn.Linear\(1, 1\)"):
        check_output_fits(nn.Linear(1, 2), ds.train_x[:2], ds.train_y[:2], ds)


def test_binary_loss_follows_how_the_model_ends():
    x = torch.randn(4, 8)
    logits = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 1))
    assert not ends_in_probabilities(logits(x))
    assert ends_in_probabilities(nn.Sequential(logits, nn.Sigmoid())(x))
    assert ends_in_probabilities(torch.sigmoid(logits(x)).view(-1, 1))
    # Logits that happen to fall in [0, 1] are still logits: the last op is affine.
    small = nn.Linear(8, 1)
    nn.init.zeros_(small.weight)
    nn.init.constant_(small.bias, 0.5)
    assert not ends_in_probabilities(small(x))
    # Both losses agree on the same predictions.
    z, y = torch.randn(6, 1), torch.randint(0, 2, (6, 1)).float()
    assert torch.allclose(tasks.loss_mean("binary-logits", z, y),
                          tasks.loss_mean("binary", torch.sigmoid(z), y))
    assert tasks.correct_count("binary-logits", z, y) == tasks.correct_count(
        "binary", torch.sigmoid(z), y)


def test_a_binary_model_ending_in_logits_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets.py").write_text(NETS)
    result = runner.invoke(app, ["train", "nets.py:Logits", "--dataset", "diabetes",
                                 "--epochs", "30", "--lr", "0.05", "--optimizer", "adam",
                                 "--headless", "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "binary, model ends in logits: BCEWithLogitsLoss" in result.output.splitlines()[0]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["loss"] == "BCEWithLogitsLoss"
    last = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()
            if '"EpochMetrics"' in line][-1]
    assert last["value"] > 0.7  # the diabetes-like table is learnable: well above 65% base rate


def test_the_seed_sigmoid_model_keeps_bce():
    _, events = _train("diabetes", "diabetes")
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert started.setup == "binary, model ends in a sigmoid: BCELoss"
    assert isinstance(events[-1], ev.Finished)


# ---------------------------------------------------------------- CSV class names


def _species_rows(n: int) -> list[list[object]]:
    names = ("setosa", "versicolor", "virginica")
    return [[i % 3 + 0.1 * (i % 5), (i % 3) * 2.0, names[i % 3]] for i in range(n)]


@pytest.mark.parametrize("header", [["len", "width", "species"], None])
def test_csv_class_names_become_classes(tmp_path, header):
    path = write_csv(tmp_path / "iris.csv", _species_rows(30), header=header)
    ds = load_dataset(f"csv:{path}")
    assert ds.task == "classification" and ds.num_classes == 3
    assert ds.labels == ("setosa", "versicolor", "virginica")
    assert ds.n_train + ds.n_val == 30  # no row taken for a header when there is none
    x = torch.cat([ds.train_x, ds.val_x])
    y = torch.cat([ds.train_y, ds.val_y])
    assert torch.equal(y, (x[:, 1] / 2).long())  # the ids follow the names' sorted order


def test_csv_two_names_are_binary(tmp_path):
    rows = [[i, "yes" if i % 2 else "no"] for i in range(10)]
    ds = load_dataset(f"csv:{write_csv(tmp_path / 'b.csv', rows, header=['x', 'ok'])}")
    assert ds.task == "binary" and ds.labels == ("no", "yes")
    x = torch.cat([ds.train_x, ds.val_x])
    y = torch.cat([ds.train_y, ds.val_y])
    assert torch.equal(y[:, 0], x[:, 0] % 2)


def test_csv_numeric_header_table_unchanged(tmp_path):
    path = write_csv(tmp_path / "n.csv", [[i, i % 3] for i in range(12)], header=["a", "t"])
    ds = load_dataset(f"csv:{path}")
    assert ds.task == "classification" and ds.labels == ("0", "1", "2")
    assert ds.n_train + ds.n_val == 12


@pytest.mark.parametrize("rows,match", [
    ([[i, "same"] for i in range(6)], "at least 2 different labels"),
    ([[i, f"id{i}"] for i in range(1200)], "looks like an identifier"),
    ([[1, "a"], [2, ""], [3, "b"]], "line 2: the target"),
    ([[1, "a"], ["x", "b"], [3, "c"]], r"line 2, column 1: 'x' is not a number"),
])
def test_csv_bad_name_columns(tmp_path, rows, match):
    from tui_nn.data import DataError
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError, match=match):
        load_dataset(f"csv:{path}")


def test_csv_names_reach_the_run_and_its_predictions(tmp_path):
    path = write_csv(tmp_path / "iris.csv", _species_rows(60), header=["a", "b", "species"])
    events: list[ev.Event] = []
    cfg = TrainConfig(model=f"{tmp_path / 'nets.py'}:Three", dataset=f"csv:{path}", epochs=2,
                      threads=1, run_dir=str(tmp_path / "run"), val_predictions=True,
                      tensorboard=False)
    (tmp_path / "nets.py").write_text(
        "from torch import nn\nclass Three(nn.Sequential):\n"
        "    def __init__(self):\n        super().__init__(nn.Linear(2, 8), nn.ReLU(), "
        "nn.Linear(8, 3))\n")
    result = Trainer(cfg, events.append).run()
    assert isinstance(result, ev.Finished), result
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["labels"] == ["setosa", "versicolor", "virginica"]
    shown = [e for e in events if isinstance(e, ev.ValPredictions)]
    assert shown and shown[-1].confusion.labels == ("setosa", "versicolor", "virginica")


def test_views_of_a_logits_binary_model():
    from tui_nn.insight.autograd import example_loss
    from tui_nn.insight.fit import fit_snapshot

    torch.manual_seed(0)
    logits = nn.Sequential(nn.Linear(1, 4), nn.ReLU(), nn.Linear(4, 1))
    example = example_loss(logits, (1,), dataset="hours")
    assert example.what.startswith("binary_cross_entropy_with_logits")
    assert type(example.loss.grad_fn).__name__.startswith("BinaryCrossEntropyWithLogits")
    sigmoid = nn.Sequential(logits, nn.Sigmoid())
    assert example_loss(sigmoid, (1,), dataset="hours").what.startswith(
        "binary_cross_entropy(")
    hours = load_dataset("hours")
    as_logits = fit_snapshot(logits, hours, points=7, logits=True)
    as_probs = fit_snapshot(sigmoid, hours, points=7)
    assert as_logits.line_y == pytest.approx(as_probs.line_y)  # the live fit shows P(class 1)


def test_a_dataset_without_a_class_count_is_not_refused():
    import dataclasses

    from helpers import blobs_images
    ds = dataclasses.replace(blobs_images(n_train=4, n_val=2), num_classes=None)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 7))
    assert check_output_fits(net, ds.train_x[:2], ds.train_y[:2], ds).note.startswith("7 classes")


def test_a_model_returning_a_tuple_is_told_so():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 1)

        def forward(self, x):
            return self.fc(x), x

    ds = load_dataset("diabetes")
    with pytest.raises(FitError, match="Pair returns a tuple, not a tensor"):
        check_output_fits(Pair(), ds.train_x[:2], ds.train_y[:2], ds)


def test_class_names_from_files_cannot_carry_terminal_codes(tmp_path):
    rows = [[i, "\x1b[31mred" if i % 2 else "blue"] for i in range(8)]
    ds = load_dataset(f"csv:{write_csv(tmp_path / 'c.csv', rows)}")
    assert ds.labels == ("\\x1b[31mred", "blue") or ds.labels == ("blue", "\\x1b[31mred")
    assert all(label.isprintable() for label in ds.labels)
    root = write_image_tree(tmp_path / "imgs", {"ok": 2, "bad\x07bell": 2}, mode="L")
    assert sorted(load_dataset(f"folder:{root}").labels) == ["bad\\x07bell", "ok"]
