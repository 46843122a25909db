"""The record model (issue 27): what a run directory holds is made inert where it is read, so
the views show it as it comes (no clean() of their own), and the run readers import each other
in no loop."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from hostile import CLEAR, ESC_TITLE, good_run, inert
from tui_nn.runs import read_run_info
from tui_nn.runs.records import read_config


def test_config_json_comes_inert_and_one_line_from_the_reader(tmp_path):
    run = good_run(tmp_path / "r")
    (run / "config.json").write_text(json.dumps(
        {"model": f"m{ESC_TITLE}", f"k{CLEAR}": {"path": "a\nb", "list": [f"x{CLEAR}"]}}))
    config, problem = read_config(run)
    assert problem is None
    assert config["model"] == "m\\x1b]0;pwned\\x07"
    nested = config["k\\x1b[2J"]
    assert nested["path"] == "a\\x0ab" and inert(nested["list"][0])


def test_a_tensorboard_log_dir_of_a_hostile_name_lists_inert(tmp_path):
    log = tmp_path / f"tb{ESC_TITLE}"
    log.mkdir()
    (log / f"events.out.tfevents.1{CLEAR}").write_bytes(b"not an event file")
    info = read_run_info(log, check_writers=False)
    assert info.kind == "tensorboard"
    assert inert(info.name) and "\\x1b]0;pwned" in info.name
    assert info.message and inert(info.message)


def test_a_remote_target_shows_its_typed_path_inert(tmp_path):
    from tui_nn.commands.runs_cmd import hosts_table
    from tui_nn.runs.remote import Listing, Target

    target = Target("gpu1", f"runs{CLEAR}")
    assert inert(str(target)) and str(target) == "gpu1:runs\\x1b[2J"
    table = hosts_table([Listing(target, error="cannot connect")])
    assert inert(table) and "runs\\x1b[2J" in table


def test_the_runs_cli_lists_hostile_names_inert_without_cleaning_them_itself(tmp_path):
    from tui_nn.commands.runs_cmd import run_runs

    good_run(tmp_path / f"r{ESC_TITLE}", model=f"cnn{CLEAR}", dataset="d\u202e")
    out = io.StringIO()
    assert run_runs(str(tmp_path), as_json=False, out=out) == 0
    assert inert(out.getvalue()) and "cnn\\x1b[2J" in out.getvalue()


def test_the_run_readers_import_each_other_in_no_loop():
    # An acyclic_siblings contract over tui_nn (every package, tui_nn.runs among them) counts
    # imports inside functions (info <-> tensorboard was one, hidden in read_tensorboard_info),
    # and it is kept.
    import tomllib

    repo = Path(__file__).resolve().parents[1]
    contracts = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"]
    assert any(c["type"] == "acyclic_siblings" and ({"tui_nn", "tui_nn.runs"} & set(c["ancestors"]))
               for c in contracts)
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], capture_output=True, text=True, cwd=repo)
    assert done.returncode == 0 and "0 broken" in done.stdout, done.stdout[-2000:]


def test_a_hosts_table_of_only_unreadable_roots_is_drawn():
    # Every host down: the rows are all short ones (it raised IndexError before).
    from tui_nn.commands.runs_cmd import hosts_table
    from tui_nn.runs.remote import Listing, Target

    table = hosts_table([Listing(Target("gpu1", "runs"), error="cannot connect"),
                         Listing(Target("gpu2", ""), error="timed out")])
    assert "gpu1  runs" in table and "gpu2  ~" in table and table.count("unreachable") == 2


def test_live_events_reach_the_app_inert_as_records_reach_watch():
    # The Train tab shows the in-process engine's events: the bridge makes their strings inert
    # with the decoder's rules (a model's name, a dataset path, a model's decoded output).
    from hostile import started
    from tui_nn.engine import events as ev
    from tui_nn.tui.bridge import TrainingBridge

    class Target:
        def __init__(self):
            self.posted = []

        def post_message(self, message):
            self.posted.append(message)

    target = Target()
    bridge = TrainingBridge(target)
    raw = started(model=f"m{ESC_TITLE}", dataset="d\u202e", device_name=f"gpu{CLEAR}")
    bridge._on_event(ev.RunStarted(**{k: v for k, v in raw.items() if k != "type"},
                                   changes={f"k{CLEAR}": ["a", f"b{CLEAR}"]}))
    bridge._on_event(ev.Failed(message=f"boom\n{CLEAR}", details={"tb": ESC_TITLE}))
    first, last = target.posted[0].event, target.posted[-1].event
    assert first.model == "m\\x1b]0;pwned\\x07" and inert(first.dataset)
    assert inert(first.device_name) and first.n_train == 640
    assert all(inert(k) and inert(v[1]) for k, v in first.changes.items())
    assert inert(last.message) and "\n" in last.message and inert(last.details["tb"])


def test_a_model_opened_from_a_file_is_listed_inert():
    from tui_nn.tui.catalog import ModelEntry

    entry = ModelEntry(f"my{CLEAR}.py:Net", f"Net from my{ESC_TITLE}.py", "", None, in_zoo=False)
    assert entry.source == f"my{CLEAR}.py:Net"  # still the key it is loaded by
    assert inert(entry.shown_source) and inert(entry.description)


def test_an_inspections_layer_names_are_inert_where_traced():
    # Every view of an inspection (table, JSON, the app, the diff) reads these fields as they are.
    from tui_nn.shapes.records import LayerRow

    row = LayerRow(index=0, path=f"enc{CLEAR}.fc", name=f"fc{ESC_TITLE}", type="T\u202e",
                   depth=1, detail=f"Linear({CLEAR})")
    assert all(inert(v) for v in (row.path, row.name, row.type, row.detail))
    assert row.path == "enc\\x1b[2J.fc"


def test_a_lessons_worker_error_is_one_inert_line():
    # The sequences lesson shows it as Text in three places (one was a markup string before),
    # each made by first_line(exc, with_type=True) where the worker catches it.
    from tui_nn.textsafe import first_line

    text = first_line(RuntimeError(f"bad [/] {CLEAR}\nsecond line"), with_type=True)
    assert text == "RuntimeError: bad [/] \\x1b[2J" and inert(text)


def test_an_exceptions_first_line_is_inert_wherever_the_app_shows_it():
    # The inspector, the memory line and the model diff show it as Text (the memory line
    # showed it raw before).
    from tui_nn.textsafe import first_line

    assert first_line(ValueError(f"no {CLEAR}\nmore")) == "no \\x1b[2J"
    assert first_line(ValueError("")) == "ValueError"
    assert first_line(KeyError(ESC_TITLE), with_type=True) == "KeyError: '\\x1b]0;pwned\\x07'"
