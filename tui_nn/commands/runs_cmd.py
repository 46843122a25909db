"""`tui-nn runs` and `tui-nn export`: the run directories on disk, as a table, JSON or CSV.

Exit codes: 0 done; 1 an export that could not be written, or a HOST:PATH root that could
not be read (its row says why; the others are listed); 2 a usage error (a RUN that names
no run, a --root that is not a directory). Errors are one line on stderr.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TextIO

from tui_nn.commands.tables import text_table
from tui_nn.fmt import best_label, epochs_label, fmt_bytes, fmt_hms, status_label
from tui_nn.textsafe import error as _err, say

MAX_CELL = 60  # a run name or config value longer than this is cut in the table (JSON has all)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run_runs(root: str | None, as_json: bool, out: TextIO | None = None,
             roots: list[str] | None = None) -> int:
    """List the runs under root (default ./runs, where a missing folder just means no runs),
    or under every one of roots, local or HOST:PATH (see run_many)."""
    from tui_nn.runs import DEFAULT_ROOT, discover_runs

    out = out or sys.stdout
    every = [*(roots or []), *([root] if root is not None and roots else [])]
    if len(every) == 1 and _is_local(every[0]):
        root = every[0]
    elif every:
        return run_many(every, as_json, out)
    path = Path(root if root is not None else DEFAULT_ROOT)
    if root is not None and not path.is_dir():
        _err(f"--root {root}: {'not a directory' if path.exists() else 'no such directory'}")
        return EXIT_USAGE
    runs = discover_runs(path)
    if as_json:
        json.dump([_finite(r.to_dict()) for r in runs], out, indent=2, default=str,
                  allow_nan=False)
        out.write("\n")
    elif not runs:
        say(f"no runs under {path}/ (train one: tui-nn train MODEL --headless)", out)
    else:
        out.write(runs_table(runs))
    return EXIT_OK


def _finite(value: object) -> object:
    # JSON has no inf/nan (a diverged run's mse is inf): they become null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def runs_table(runs: list) -> str:
    rows = [_cells(r) for r in runs]
    return text_table(["run", "model", "dataset", "status", "epochs", "best", "duration", "size"],
                  rows, right={4, 6, 7})


def _is_local(text: str) -> bool:
    from tui_nn.runs.remote import split_target
    return split_target(text) is None


def run_many(roots: list[str], as_json: bool, out: TextIO) -> int:
    """Runs under several roots, local folders and HOST:PATH, in one table with a host column.
    Remote hosts are read at once (runs.remote); one that is down, hangs or has no such folder
    gets a row saying so and exit code 1, the others are listed as usual."""
    from tui_nn.runs.remote import gpu_summary, list_roots

    bad = bad_root(roots)
    if bad is not None:
        _err(bad)
        return EXIT_USAGE
    listings = list_roots(roots)
    if as_json:
        json.dump([_finite({"host": ls.target.host, **r.to_dict()}) for ls in listings
                   for r in ls.runs] + [{"host": ls.target.host, "root": ls.target.path,
                                         "error": ls.error} for ls in listings if ls.error],
                  out, indent=2, default=str, allow_nan=False)
        out.write("\n")
    else:
        out.write(hosts_table(listings))
        for ls in listings:
            if ls.error:
                out.write(f"{ls.target}: {ls.error}\n")  # both inert (runs.remote)
        out.write(gpu_summary(listings))
    return EXIT_FAILED if any(ls.error for ls in listings) else EXIT_OK


def bad_root(roots: list[str]) -> str | None:
    """Why a local root given cannot be listed (the first such), or None."""
    from tui_nn.runs.remote import split_target
    for text in roots:
        if split_target(text) is None and not Path(text).is_dir():
            return (f"{text}: {'not a directory' if Path(text).exists() else 'no such directory'}"
                    " (a remote folder is HOST:PATH)")
    return None


def hosts_table(listings: list) -> str:
    """runs_table with the host first; a root that could not be read is one row saying so
    (the reason follows the table: ssh's own words are too long for a cell)."""
    rows = []
    for ls in listings:
        host, path = ls.target.host[:24], ls.target.shown_path[:MAX_CELL] or "~"
        if ls.error:
            rows.append([host, path, "", "",
                         "unreachable" if _is_connect_error(ls.error) else "unreadable"])
        elif not ls.runs:
            rows.append([host, path, "", "", "no runs"])
        rows.extend([host, *_cells(r)] for r in ls.runs)
    headers = ["host", "run", "model", "dataset", "status", "epochs", "best", "duration", "size"]
    # Rows of a root without runs are short: padded to the headers (every root down included).
    rows = [r + [""] * (len(headers) - len(r)) for r in rows]
    return text_table(headers, rows, right={5, 7, 8})


def _is_connect_error(message: str) -> bool:
    return any(w in message for w in ("connect", "timed out", "resolve", "refused",
                                      "Permission denied", "no answer", "closed"))


def _cells(r) -> list[str]:
    # Inert from runs.info: only cut to the cell.
    return [*(c[:MAX_CELL] for c in (r.name, r.model, r.dataset, status_label(r))),
            epochs_label(r), best_label(r.metric, r.best_value), fmt_hms(r.duration_s),
            fmt_bytes(r.size_bytes)]


def run_export(run: str, csv: bool, out: str | None, tensorboard: bool = False,
               root: str | None = None, stdout: TextIO | None = None) -> int:
    """Export RUN (a run directory, or a run's name under ./runs, or "latest"). CSV is the
    default format; see tui_nn.runs.export for the files and their columns."""
    from tui_nn.runs import DEFAULT_ROOT, RunNotFound, resolve_run

    stdout = stdout or sys.stdout
    try:
        run_dir = resolve_run(run, root or DEFAULT_ROOT)
    except RunNotFound as e:
        _err(str(e))
        return EXIT_USAGE
    from tui_nn.runs.tensorboard import is_tensorboard_dir
    if is_tensorboard_dir(run_dir):
        _err(f"{run_dir} is a TensorBoard log directory (already TensorBoard's format); "
             "export reads tui-nn run directories")
        return EXIT_USAGE
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        _err(f"--out {out} exists and is not a directory")
        return EXIT_USAGE
    codes = [_export_csv(run_dir, out, stdout)] if csv or not tensorboard else []
    if tensorboard:
        codes.append(_export_tensorboard(run_dir, out, stdout))
    return max(codes)


def _export_csv(run_dir: Path, out: str | None, stdout: TextIO) -> int:
    from tui_nn.runs import export_csv
    try:
        result = export_csv(run_dir, out)
    except OSError as e:
        _err(f"cannot write CSV files in {out or run_dir}: {e.strerror or e}")
        return EXIT_FAILED
    say(f"wrote {result.steps_path} ({result.n_steps} steps)\n"
        f"wrote {result.epochs_path} ({result.n_epochs} epochs)", stdout)
    return EXIT_OK


def _export_tensorboard(run_dir: Path, out: str | None, stdout: TextIO) -> int:
    from tui_nn.engine.tensorboard import replay_metrics, tensorboard_available
    if not tensorboard_available():
        _err("--tensorboard needs the tensorboard package: pip install 'tui-nn[tensorboard]'")
        return EXIT_USAGE
    target = Path(out) / run_dir.name if out is not None else run_dir
    if any(target.glob("events.out.tfevents.*")):
        _err(f"{target} already holds TensorBoard event files (written while training?): "
             "pass --out DIR to write a fresh copy elsewhere")
        return EXIT_FAILED
    try:
        count = replay_metrics(run_dir, target)
    except (OSError, RuntimeError) as e:
        _err(f"cannot write TensorBoard files in {target}: {getattr(e, 'strerror', None) or e}")
        return EXIT_FAILED
    say(f"wrote TensorBoard event files in {target} ({count} events): "
        f"tensorboard --logdir {target.parent}", stdout)
    return EXIT_OK
