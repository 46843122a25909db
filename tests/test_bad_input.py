"""A corpus of bad input fed to the CLI: each gets one clear line, the right exit code and no
traceback."""

from __future__ import annotations

import gzip
import math
import pickle

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tui_nn.cli import app

runner = CliRunner()


class _Evil:
    def __reduce__(self):
        return (print, ("this would have run code",))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "evil.pt").write_bytes(pickle.dumps({"model": _Evil()}))
    (d / "evil_dir").mkdir()
    (d / "evil_dir" / "last.pt").write_bytes(pickle.dumps({"model": _Evil()}))
    (d / "garbage.pt").write_bytes(b"this is not a checkpoint at all")
    torch.save({"weights": torch.zeros(3)}, d / "notours.pt")
    (d / "empty_run").mkdir()
    (d / "a_file").write_text("x")
    (d / "text.csv").write_text("a,b,c\n1,2,0\n3,oops,1\n")
    (d / "ragged.csv").write_text("1,2,0\n3,1\n")
    (d / "empty.csv").write_text("")
    with gzip.open(d / "bad.csv.gz", "wb") as f:
        f.write(b"1,2\nx,y\n")
    (d / "notgz.csv.gz").write_bytes(b"not gzip at all")
    (d / "noclasses").mkdir()
    return d


# (args, exit code, a fragment the one-line message must contain)
TRAIN_CASES = [
    (["train", "cnnn"], 2, "Did you mean 'cnn'"),
    (["train", ""], 2, "empty model source"),
    (["train", "cnn", "--dataset", "digitz"], 2, "Did you mean 'digits'"),
    (["train", "cnn", "--dataset", "nope:x"], 2, "unknown dataset"),
    (["train", "cnn", "--lr", "0"], 2, "--lr must be"),
    (["train", "cnn", "--lr", "-1"], 2, "--lr must be"),
    (["train", "cnn", "--lr", "nan"], 2, "--lr must be"),
    (["train", "cnn", "--lr", "inf"], 2, "--lr must be"),
    (["train", "cnn", "--lr", "abc"], 2, "--lr"),
    (["train", "cnn", "--batch-size", "0"], 2, "--batch-size must be"),
    (["train", "cnn", "--batch-size", "-5"], 2, "--batch-size must be"),
    (["train", "cnn", "--batch-size", "1e3"], 2, "--batch-size"),
    (["train", "cnn", "--epochs", "0"], 2, "--epochs must be"),
    (["train", "cnn", "--epochs", "1.5"], 2, "--epochs"),
    (["train", "cnn", "--optimizer", "sgdd"], 2, "'sgdd' is not one of"),
    (["train", "cnn", "--schedule", "warmup"], 2, "'warmup' is not one of"),
    (["train", "cnn", "--momentum", "1.5"], 2, "--momentum"),
    (["train", "cnn", "--weight-decay", "-1"], 2, "--weight-decay"),
    (["train", "cnn", "--grad-clip", "0"], 2, "--grad-clip"),
    (["train", "cnn", "--amp", "fp8"], 2, "--amp"),
    (["train", "cnn", "--device", "tpu"], 2, "unknown device"),
    (["train", "cnn", "--resume", "{d}/missing"], 2, "does not exist"),
    (["train", "cnn", "--resume", "{d}/empty_run"], 2, "no checkpoint"),
    (["train", "cnn", "--resume", "{d}/evil.pt"], 2, "refusing"),
    (["train", "cnn", "--resume", "{d}/evil_dir"], 2, "refusing"),
    (["train", "cnn", "--resume", "{d}/garbage.pt"], 2, "cannot read checkpoint"),
    (["train", "cnn", "--resume", "{d}/notours.pt"], 2, "not a tui-nn checkpoint"),
    (["train", "cnn", "--run-dir", "{d}/a_file"], 2, "not a directory"),
    (["train", "diabetes", "--dataset", "csv:{d}/missing.csv"], 2, "missing.csv"),
    (["train", "diabetes", "--dataset", "csv:{d}/text.csv"], 2, "oops"),
    (["train", "diabetes", "--dataset", "csv:{d}/ragged.csv"], 2, "ragged.csv"),
    (["train", "diabetes", "--dataset", "csv:{d}/empty.csv"], 2, "empty.csv"),
    (["train", "diabetes", "--dataset", "csv:{d}/notgz.csv.gz"], 2, "notgz.csv.gz"),
    (["train", "cnn", "--dataset", "folder:{d}/missing"], 2, "missing"),
    (["train", "cnn", "--dataset", "folder:{d}/noclasses"], 2, "noclasses"),
    (["train", "cnn", "--dataset", "mnist", "--data-dir", "{d}/nodata"], 2, "digits"),
    (["train", "cnn", "--dataset", "longrange"], 2, "expects input"),
    (["train", "lstm", "--dataset", "longrange:abc"], 2, "longrange"),
    (["train", "cnn", "--dataset", "diabetes"], 2, "expects input"),
]
if not torch.cuda.is_available():
    TRAIN_CASES += [
        (["train", "cnn", "--device", "cuda"], 2, "CUDA is not available"),
        (["train", "logistic", "--amp", "bf16"], 2, "needs a CUDA device"),
    ]


@pytest.mark.parametrize("args,code,fragment", TRAIN_CASES,
                         ids=[" ".join(c[0][1:]) or "empty" for c in TRAIN_CASES])
def test_bad_train_input(files, tmp_path, monkeypatch, args, code, fragment):
    monkeypatch.chdir(tmp_path)
    args = [a.replace("{d}", str(files)) for a in args] + ["--headless", "--epochs", "1"] \
        if "--epochs" not in args else [a.replace("{d}", str(files)) for a in args] + ["--headless"]
    result = runner.invoke(app, args)
    output = result.output
    assert result.exit_code == code, output
    assert fragment in output, output
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1, output  # Typer's own usage errors are boxed, not "error:"


MODEL_FILE = '''
import torch
from torch import nn

class Good(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 1)
    def forward(self, x):
        return torch.sigmoid(self.fc(x))

class Bad(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 5)
        self.fc = nn.Linear(400, 10)
    def forward(self, x):
        return self.fc(torch.max_pool2d(self.conv(x), 2).flatten(1))

class Raises(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 1)
    def forward(self, x):
        raise ValueError("I am broken")

class Ten(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 10)
    def forward(self, x):
        return self.fc(x)

class NeedsArgs(nn.Module):
    def __init__(self, width):
        super().__init__()
'''

SOURCE_CASES = [
    # A model that cannot take the data is the user's to fix: exit 2, with the diagnosis.
    ("{m}:Bad", "digits", 2, "use nn.Linear(864, 10)"),
    ("{m}:Raises", "digits", 2, "I am broken"),
    ("{m}:Ten", "diabetes", 2, "Ten ends in Linear(8, 10) but diabetes is binary"),
    ("{m}:Nope", "digits", 2, "has no 'Nope'"),
    ("{m}:NeedsArgs", "digits", 2, "width"),
    ("{s}:Net", "digits", 2, "syntax error"),
    ("{d}/missing.py:Net", "digits", 2, "not found"),
    ("{m}:Good", None, 2, "--dataset is needed"),
    ("no_such_module_xyz:build", "digits", 2, "no_such_module_xyz"),
]


@pytest.mark.parametrize("source,dataset,code,fragment", SOURCE_CASES,
                         ids=[c[0].split(":")[-1] + "-" + str(c[1]) for c in SOURCE_CASES])
def test_bad_model_sources_for_train(files, tmp_path, monkeypatch, source, dataset, code,
                                     fragment):
    monkeypatch.chdir(tmp_path)
    model_file = tmp_path / "my_model.py"
    model_file.write_text(MODEL_FILE)
    syntax = tmp_path / "broken.py"
    syntax.write_text("def f(:\n")
    source = source.format(m=model_file, s=syntax, d=files)
    args = ["train", source, "--epochs", "1", "--headless"]
    if dataset:
        args += ["--dataset", dataset]
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert fragment in result.output, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()  # a model that cannot start leaves no run behind


def test_a_model_file_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_model.py").write_text(MODEL_FILE)
    result = runner.invoke(app, ["train", "my_model.py:Good", "--dataset", "diabetes",
                                 "--epochs", "2", "--headless"])
    assert result.exit_code == 0, result.output
    assert "finished after 2 epoch(s)" in result.output


# `tui` (and `train` on a terminal) check the same options before the app opens.
TUI_CASES = [
    (["tui", "--epochs", "0"], "--epochs must be"),
    (["tui", "cnn", "--lr", "-1"], "--lr must be"),
    (["tui", "cnn", "--optimizer", "sgdd"], "'sgdd' is not one of"),
    (["tui", "--start"], "--start needs a MODEL"),
    (["tui", "cnnn"], "Did you mean 'cnn'"),
    (["tui", "lenett", "--epochs", "2"], "Did you mean 'lenet'"),
    (["tui", "--resume", "{d}/missing"], "does not exist"),
    (["tui", "--resume", "{d}/empty_run"], "no checkpoint"),
]


@pytest.mark.parametrize("args,fragment", TUI_CASES, ids=[" ".join(c[0]) for c in TUI_CASES])
def test_bad_tui_input_fails_before_the_app_opens(files, args, fragment):
    result = runner.invoke(app, [a.replace("{d}", str(files)) for a in args])
    assert result.exit_code == 2, result.output
    assert fragment in result.output and "Traceback" not in result.output


# ---- property-based: whatever the numbers, one clear answer ----------------------------------
NUMERIC_OPTIONS = ["--epochs", "--batch-size", "--lr", "--momentum", "--weight-decay",
                   "--grad-clip", "--threads", "--checkpoint-every", "--seed"]
number_text = st.one_of(
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "1e3", "0x10", "1_000", "--", "nan", "-inf", "1,5", "٣"]),
    st.text(max_size=8),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(NUMERIC_OPTIONS), value=number_text)
def test_fuzzed_numeric_options_get_one_clear_answer(monkeypatch, tmp_path, option, value):
    """Any value for any numeric option of `train`: either training starts (exit 0; the run is
    replaced by a stub here) or exit 2 with a message naming the option, never a traceback."""
    from tui_nn.engine import events as ev
    from tui_nn.engine import trainer as trainer_module

    started = []

    def fake_run(self):
        started.append(self.config)
        return ev.Finished(status="finished", run_dir=None, epochs_done=1, step=1,
                           metric="accuracy", best_value=1.0, last_value=1.0, elapsed_s=0.0)

    monkeypatch.setattr(trainer_module.Trainer, "run", fake_run)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "diabetes", "--headless", option, value])
    output = result.output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        (option, value, result.exception)
    if result.exit_code == 0:
        assert len(started) == 1
        cfg = started[0]
        assert cfg.epochs is None or cfg.epochs >= 1
        assert cfg.batch_size is None or cfg.batch_size >= 1
        assert cfg.lr is None or (math.isfinite(cfg.lr) and cfg.lr > 0)
    else:
        assert result.exit_code == 2, (option, value, output)
        assert not started
        assert option in output or option.lstrip("-") in output, (option, value, output)


def test_checking_options_before_the_app_opens_does_not_import_torch():
    """The check runs before the first frame; importing torch there would cost ~2-3 s."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from tui_nn import cli\n"
            "try:\n"
            "    cli._check_options('cnnn', {'epochs': 2})\n"
            "except Exception:\n"
            "    pass\n"
            "cli._check_options('cnn', {'epochs': 2, 'lr': 0.1})\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
