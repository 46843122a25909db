"""Your own Dataset (issue 29): `--dataset FILE.py:build` streams a torch Dataset through a
DataLoader; the task is read off the first batch's targets; a run resumes where it stopped
(epoch end or mid-epoch: the same batches as an uninterrupted run); bad data exits 2 before
any run directory exists."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_nn.cli import app
from tui_nn.engine import events as ev
from tui_nn.engine.config import TrainConfig
from tui_nn.engine.trainer import Trainer
from tui_nn.runs.history import load_history

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_data.py"

# A small generated set: 1×28×28 images whose class is the brightest quarter (4 classes).
HEADER = textwrap.dedent("""
    import torch
    from torch.utils.data import Dataset

    class Quarters(Dataset):
        def __init__(self, n, seed):
            g = torch.Generator().manual_seed(seed)
            self.y = torch.randint(4, (n,), generator=g)
            self.x = torch.rand(n, 1, 28, 28, generator=g) * 0.5
            for i, c in enumerate(self.y.tolist()):
                r, s = divmod(c, 2)
                self.x[i, 0, r * 14:r * 14 + 14, s * 14:s * 14 + 14] += 0.5
        def __len__(self):
            return len(self.y)
        def __getitem__(self, i):
            return self.x[i], self.y[i]
""")


def _file(tmp_path: Path, body: str, name: str = "data.py") -> str:
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body))
    return str(path)


def _history(run: Path) -> list[tuple]:
    return [(e.epoch, e.step, e.train_loss, e.val_loss) for e in load_history(run).epochs]


def _train(dataset: str, run: Path | None = None, callback=None, model: str = "mlp",
           **kw) -> Trainer:
    kw = {"epochs": 2, **kw}
    cfg = TrainConfig(model, dataset=dataset, batch_size=16, threads=1, workers=0,
                      run_dir=str(run) if run else None, save=run is not None, **kw)
    trainer = Trainer(cfg, callback)
    trainer.run()
    return trainer


def test_a_dataset_file_trains_through_a_dataloader_and_learns(tmp_path):
    spec = _file(tmp_path, "def build():\n    return Quarters(256, 0), Quarters(64, 1)\n")
    events: list = []
    trainer = _train(f"{spec}:build", callback=events.append, epochs=3, lr=0.1)
    assert trainer.stream is not None and trainer.task == "classification"
    assert trainer.dataset.n_train == 256 and trainer.dataset.num_classes == 4
    epochs = [e for e in events if isinstance(e, ev.EpochMetrics)]
    assert len(epochs) == 3 and epochs[-1].value > 0.6  # 4 classes: chance is 0.25
    assert epochs[-1].step == 3 * 16


def test_a_single_dataset_is_split_and_float_targets_are_regression_or_binary(tmp_path):
    spec = _file(tmp_path, """
        class Reg(Quarters):
            def __getitem__(self, i):
                return self.x[i].flatten(), self.y[i].float() / 3
        class Bin(Quarters):
            def __getitem__(self, i):
                return self.x[i].flatten(), (self.y[i] > 1).float()
        def reg():
            return Reg(100, 0)
        def binary():
            return Bin(100, 0)
    """)
    reg = _train(f"{spec}:reg", epochs=1)
    assert reg.task == "regression" and (reg.dataset.n_train, reg.dataset.n_val) == (80, 20)
    assert reg.train_y.shape[1:] == (1,)
    model = tmp_path / "net.py"
    model.write_text("from torch import nn\n\nclass Net(nn.Sequential):\n"
                     "    def __init__(self):\n        super().__init__(nn.Linear(784, 1))\n")
    binary = _train(f"{spec}:binary", epochs=1, model=f"{model}:Net")
    assert binary.task == "binary" and binary.loss_task == "binary-logits" and binary.history


def test_resume_at_an_epoch_end_and_mid_epoch_reads_the_same_batches(tmp_path):
    spec = _file(tmp_path, "def build():\n    return Quarters(160, 0), Quarters(32, 1)\n")
    straight = tmp_path / "straight"
    _train(f"{spec}:build", straight, epochs=3, seed=2)

    def stop_at_step_13(event: ev.Event) -> None:
        if isinstance(event, ev.StepMetrics) and event.step >= 13:
            trainer.stop()

    run = tmp_path / "resumed"
    trainer = Trainer(TrainConfig("mlp", dataset=f"{spec}:build", epochs=3, batch_size=16,
                                  threads=1, workers=0, seed=2, report_interval_s=0.0,
                                  run_dir=str(run)), stop_at_step_13)
    assert trainer.run().step == 13  # mid-epoch 2 (10 steps an epoch)
    assert Trainer(TrainConfig("mlp", workers=1), resume_from=run).run().step == 30
    a, b = _history(straight), _history(run)
    assert [x[:2] for x in a] == [x[:2] for x in b] == [(0, 10), (1, 20), (2, 30)]
    for x, y in zip(a, b):
        assert y[2] == pytest.approx(x[2], rel=1e-6) and y[3] == pytest.approx(x[3], rel=1e-6)


def test_the_example_file_trains_a_cnn_from_the_command_line(tmp_path):
    result = runner.invoke(app, ["train", "cnn", "--dataset", f"{EXAMPLE}:build", "--epochs",
                                 "1", "--batch-size", "100", "--workers", "1",
                                 "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "2,000 train / 500 val" in result.output
    assert "DataLoader" in result.output


BAD = {
    "not_a_dataset": ("def build():\n    return 42\n", "returned a int"),
    "raises": ("def build():\n    raise RuntimeError('no database')\n",
               "build() raised RuntimeError: no database"),
    "ragged": ("""
        class Ragged(Quarters):
            def __getitem__(self, i):
                return torch.zeros(3 + i % 2), 0
        def build():
            return Ragged(20, 0)
    """, "cannot be collated"),
    "no_pairs": ("""
        class Lone(Quarters):
            def __getitem__(self, i):
                return self.x[i]
        def build():
            return Lone(20, 0)
    """, "(input, target) pair"),
    "target_shape": ("""
        class Cube(Quarters):
            def __getitem__(self, i):
                return self.x[i], torch.zeros(2, 2, 2)
        def build():
            return Cube(20, 0)
    """, "float targets of shape (16, 2, 2, 2) fit no task"),
    "missing_function": ("def build():\n    return Quarters(20, 0)\n", "has no 'biuld'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_data_exits_2_with_what_was_found_and_no_run_directory(tmp_path, case):
    body, expected = BAD[case]
    spec = _file(tmp_path, body) + (":biuld" if case == "missing_function" else ":build")
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "mlp", "--dataset", spec, "--epochs", "1",
                                 "--batch-size", "16", "--workers", "0", "--run-dir", str(run)])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert not run.exists()


def test_a_missing_file_is_refused_before_anything_runs(tmp_path):
    result = runner.invoke(app, ["train", "mlp", "--dataset", str(tmp_path / "nope.py:build"),
                                 "--epochs", "1"])
    assert result.exit_code == 2 and "not found" in result.output


@pytest.mark.slow
def test_a_two_process_gloo_run_matches_one_process(tmp_path):
    """Each rank reads its slice of every global batch and a contiguous shard of the
    validation set: the same losses as one process with the same global batch."""
    from helpers import epoch_records_of_train

    spec = _file(tmp_path, "def build():\n    return Quarters(96, 0), Quarters(30, 1)\n")
    common = ["mlp", "--dataset", f"{spec}:build", "--epochs", "2", "--batch-size", "32",
              "--workers", "0", "--headless"]

    def train(run: str, *more: str) -> list[dict]:
        return epoch_records_of_train(tmp_path / run, [*common, *more])

    one, two = train("one"), train("two", "--nproc-per-node", "2")
    import json
    assert json.loads((tmp_path / "two" / "config.json").read_text())["world_size"] == 2
    assert len(one) == len(two) == 2
    for a, b in zip(one, two):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-5
        assert abs(a["val_loss"] - b["val_loss"]) < 1e-5 and a["value"] == b["value"]


def test_augment_transforms_streamed_image_batches_and_refuses_flat_samples(tmp_path):
    spec = _file(tmp_path, """
        def build():
            return Quarters(64, 0), Quarters(16, 1)
        class Flat(Quarters):
            def __getitem__(self, i):
                return self.x[i].flatten(), self.y[i]
        def flat():
            return Flat(40, 0)
    """)
    plain = _train(f"{spec}:build", epochs=1, model="cnn")
    augmented = _train(f"{spec}:build", epochs=1, model="cnn", augment="crop=2,flip")
    assert augmented.augment is not None and augmented.history
    assert augmented.history[0].train_loss != plain.history[0].train_loss
    assert augmented.history[0].val_loss != plain.history[0].val_loss  # trained on other pixels
    result = runner.invoke(app, ["train", "mlp", "--dataset", f"{spec}:flat", "--augment",
                                 "flip", "--workers", "0", "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--augment transforms images" in result.output
    assert not (tmp_path / "r").exists()


def test_inspect_takes_the_input_shape_from_the_datasets_first_sample(tmp_path):
    result = runner.invoke(app, ["inspect", "cnn", "--dataset", f"{EXAMPLE}:build"])
    assert result.exit_code == 0, result.output
    assert "input 1×1×28×28 float32: ok" in result.output
    tokens = _file(tmp_path, """
        class Tokens(Dataset):
            def __len__(self):
                return 10
            def __getitem__(self, i):
                return torch.arange(7) % 5, i % 2
        def build():
            return Tokens()
        """)
    result = runner.invoke(app, ["inspect", "rnn", "--dataset", f"{tokens}:build"])
    assert "1×7 int64" in result.output, result.output  # an integer sample: its dtype too
    for argv in (["--dataset", str(tmp_path / "nope.py:build")],
                 ["--dataset", f"{EXAMPLE}:build", "--input", "1x28x28"]):
        result = runner.invoke(app, ["inspect", "cnn", *argv])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert result.output.startswith("error:")


def test_an_input_bound_run_shows_its_wait_for_data(tmp_path):
    import io

    from tui_nn.commands.console import PlainReporter
    slow = _file(tmp_path, """
        import time
        class Slow(Quarters):
            def __getitem__(self, i):
                time.sleep(0.004)  # a decode far slower than the model's step
                return super().__getitem__(i)
        def build():
            return Slow(256, 0), Quarters(64, 1)
        """)
    events: list = []
    out = io.StringIO()
    reporter = PlainReporter(out, line_interval_s=0.0)
    _train(slow, callback=lambda e: (events.append(e), reporter(e)), epochs=1,
           report_interval_s=0.05)
    steps = [e for e in events if isinstance(e, ev.StepMetrics)]
    assert steps and all(e.data_wait is not None for e in steps)
    assert max(e.data_wait for e in steps) > 0.5
    assert "waiting for data" in out.getvalue()
    in_memory: list = []
    Trainer(TrainConfig("mlp", dataset="hours", epochs=1, threads=1, save=False),
            in_memory.append).run()
    assert all(e.data_wait is None for e in in_memory if isinstance(e, ev.StepMetrics))
