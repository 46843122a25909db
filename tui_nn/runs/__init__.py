"""Runs on disk: list them, read their curves, compare their configs, export their metrics.

Plain Python on the files a run directory holds (config.json, metrics.jsonl, checkpoints):
no torch, no UI imports, so `tui-nn runs` is instant and any view can rebuild from disk.
"""

from tui_nn.runs.diff import config_diff
from tui_nn.runs.discover import (DEFAULT_ROOT, RunNotFound, discover_runs, newest_run,
                                  resolve_run, run_dirs)
from tui_nn.runs.export import CsvExport, export_csv
from tui_nn.runs.history import EpochPoint, RecordedHistory, load_history
from tui_nn.runs.info import STATUSES, RunInfo, read_run_info

__all__ = [
    "DEFAULT_ROOT", "STATUSES", "CsvExport", "EpochPoint", "RecordedHistory", "RunInfo",
    "RunNotFound", "config_diff", "discover_runs", "export_csv", "load_history", "newest_run",
    "read_run_info", "resolve_run", "run_dirs",
]
