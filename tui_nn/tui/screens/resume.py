"""Choose a run to continue: the resumable runs under the runs folder (stopped, interrupted or
failed, with a last.pt), newest first, or any run directory typed in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option
from textual.worker import Worker

from tui_nn.fmt import epochs_label
from tui_nn.engine.rundir import CONFIG_FILE, LAST_CHECKPOINT
from tui_nn.tui.screens.worker_errors import notify_worker_error


def describe_run_dir(path: Path) -> tuple[dict[str, Any], str | None]:
    """(model, dataset, progress) of a run directory, or an error saying why it can't be
    resumed. Reads config.json and metrics.jsonl only (no torch)."""
    from tui_nn.runs import read_run_info

    if not path.exists():
        return {}, f"{path} does not exist"
    if path.is_file():
        path = path.parent  # best.pt, last.pt, config.json: the run they belong to
    if not path.is_dir():
        return {}, f"{path} is not a run directory"
    if not (path / LAST_CHECKPOINT).exists() and not (path / CONFIG_FILE).is_file():
        return {}, f"no run in {path}: no checkpoint (last.pt) and no config.json"
    info = read_run_info(path)
    if info.status == "running":
        return {}, f"{path} is still being written by another process"
    if not info.model or info.model == "?":
        return {}, f"{path} has no readable config.json"
    return {"model": info.model, "dataset": info.dataset,
            "progress": f"epoch {epochs_label(info)}, step {info.steps_done}, "
                        f"{info.status}"}, None


@dataclass
class RunsFound(Message):
    runs: list[Any]


class ResumeScreen(ModalScreen[str | None]):
    """Dismisses with the chosen run directory, or None (Escape)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, root: str | Path = "runs") -> None:
        super().__init__()
        self.root = Path(root)
        from tui_nn.runs.remote import LOCAL, Target

        # The folder as typed, inert where a typed root is decoded (as `tui-nn runs` says it).
        self.shown_root = Target(LOCAL, str(root)).shown_path[:80]

    def compose(self) -> ComposeResult:
        with Vertical(id="resume-dialog"):
            yield Label(Text(f"Resume a run (from {self.shown_root}/…)"),
                        id="resume-title")
            yield OptionList(id="resume-runs")
            yield Input(placeholder="or type a run directory and press Enter", id="resume-path")

    def on_mount(self) -> None:
        self.query_one(OptionList).loading = True
        self._find_runs()

    @work(thread=True, exit_on_error=False)
    def _find_runs(self) -> None:
        from tui_nn.runs import discover_runs

        self.post_message(RunsFound([r for r in discover_runs(self.root) if r.resumable]))

    @on(RunsFound)
    def _runs_found(self, event: RunsFound) -> None:
        options = self.query_one(OptionList)
        options.loading = False
        if not event.runs:
            options.add_option(Option(Text(f"no stopped runs with a checkpoint in "
                                           f"{self.shown_root}"), disabled=True))
            self.query_one(Input).focus()
            return
        for run in event.runs:
            # Names, model and dataset come inert from the run's files (runs.info): Text,
            # never markup.
            options.add_option(Option(Text(
                f"{run.name[:60]}  {run.model[:40]} · "
                f"{run.dataset[:60]} · epoch {epochs_label(run)} · "
                f"{run.status}"), id=str(run.path)))
        options.highlighted = 0
        options.focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    @on(Input.Submitted)
    def _typed(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        """A failed search is a notification, and the path can still be typed."""
        if notify_worker_error(self, event) is not None:
            self.query_one(OptionList).loading = False
            self.query_one(Input).focus()
