"""`--help` at 80 columns (issue 31.5): every page fits, no choice or word is cut, flags show no
`<bool>`, choices are typed (Typer refuses others), descriptions wrap only where the terminal
does, and `tui` takes every training option `train` takes."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from tui_nn.cli import app

runner = CliRunner()
GROUP = typer.main.get_command(app)
COMMANDS = sorted(GROUP.commands)
# `train`'s own flags that are not training options: how to run it, not what to train.
LAUNCH_ONLY = {"headless", "debug", "nproc_per_node", "nnodes", "node_rank", "rdzv_endpoint",
               "rdzv_id", "model"}


def _help(*args: str) -> str:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "80", "TERM": "dumb"},
                           terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def _choices(param) -> list[str]:
    desc = param.type_descriptor
    if not desc.is_choice:
        return []
    return [getattr(c, "value", c) for c in desc.choices]


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_fits_80_columns_whole(command):
    out = _help(*([command] if command else []))
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert "<bool>" not in out, out
    assert "…" not in out, out  # nothing cut short
    if not command:
        return
    for param in GROUP.commands[command].params:
        for choice in _choices(param):
            # Whole, never split over two lines (`<sgd|momentum|nesterov|a` / `dam|...>`).
            assert re.search(rf"(?<![\w-]){re.escape(choice)}(?![\w-])", out), (param.name, out)
        if _choices(param):
            row = next(line for line in out.splitlines()
                       if (param.opts[0] if param.param_type_name == "option"
                           else f" {param.name} ") in line)
            assert "<str>" not in row, row


@pytest.mark.parametrize("command,param", [("inspect", "optimizer"), ("inspect", "amp"),
                                           ("control", "action"), ("plot", "what"),
                                           ("train", "optimizer"), ("tui", "schedule")])
def test_choices_are_typed(command, param):
    (p,) = [p for p in GROUP.commands[command].params if p.name == param]
    assert _choices(p), f"{command} {param} takes any string"


def test_bad_choices_are_usage_errors():
    for args in (["inspect", "mlp", "--optimizer", "adagrad"], ["control", "latest", "poke"],
                 ["plot", "histogram"], ["inspect", "mlp", "--amp", "fp8"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        said = " ".join(result.output.replace("│", " ").split())  # the error box wraps it
        assert "is not one of" in said, result.output


def test_command_descriptions_wrap_only_at_the_terminals_edge():
    """The docstrings' own line breaks used to cut the list's descriptions mid-sentence."""
    out = _help()
    panel = out.split("Commands", 1)[1].splitlines()[1:]
    cells: list[list[str]] = []
    for line in panel:
        if not line.startswith("│"):
            break
        name, text = line[2:12].strip(), line[12:-1].rstrip()
        if name:
            cells.append([])
        cells[-1].append(text)
    width = max(len(t) for cell in cells for t in cell)
    for cell in cells:
        for this, following in zip(cell, cell[1:]):
            # Greedy wrapping: the next line's first word did not fit on this one.
            assert len(this) + 1 + len(following.split()[0]) > width, cell
    assert len(cells) == len(COMMANDS)


def test_tui_takes_every_training_option_of_train():
    options = {c: {p.name for p in GROUP.commands[c].params} for c in ("train", "tui")}
    missing = options["train"] - LAUNCH_ONLY - options["tui"]
    assert not missing, missing
    assert {"momentum", "weight_decay", "augment", "data_dir"} <= options["tui"]


def test_tui_passes_a_non_form_option_to_the_app(monkeypatch):
    from tui_nn import cli

    opened = {}
    monkeypatch.setattr(cli, "_open_app", lambda model, options, **kw: opened.update(options))
    result = runner.invoke(app, ["tui", "cnn", "--momentum", "0.8", "--weight-decay", "0.01",
                                 "--augment", "flip", "--data-dir", "/tmp/d"])
    assert result.exit_code == 0, result.output
    assert opened == {"momentum": 0.8, "weight_decay": 0.01, "augment": "flip",
                      "data_dir": "/tmp/d"}
