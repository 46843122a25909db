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

    good_run(tmp_path / f"r{ESC_TITLE}", model=f"cnn{CLEAR}", dataset=f"d\u202e")
    out = io.StringIO()
    assert run_runs(str(tmp_path), as_json=False, out=out) == 0
    assert inert(out.getvalue()) and "cnn\\x1b[2J" in out.getvalue()


def test_the_run_readers_import_each_other_in_no_loop():
    # The acyclic_siblings contract counts imports inside functions (info <-> tensorboard was
    # one, hidden in read_tensorboard_info).
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert "No loops between the run readers (imports inside functions count) KEPT" \
        in done.stdout, done.stdout[-2000:]


def test_a_hosts_table_of_only_unreadable_roots_is_drawn():
    # Every host down: the rows are all short ones (it raised IndexError before).
    from tui_nn.commands.runs_cmd import hosts_table
    from tui_nn.runs.remote import Listing, Target

    table = hosts_table([Listing(Target("gpu1", "runs"), error="cannot connect"),
                         Listing(Target("gpu2", ""), error="timed out")])
    assert "gpu1  runs" in table and "gpu2  ~" in table and table.count("unreachable") == 2
