"""The runs screen: every run under the runs root (or under several roots, local folders and
HOST:PATH on other machines, with a host column), several chosen to compare.

The table lists model, dataset, status, epochs, best metric, duration and size (tui_nn.runs,
read in a thread worker). Space marks runs; their per-epoch curves are overlaid in one plot
(validation loss, training loss or the validation metric: `m` cycles) and the settings that
differ between them are listed beside it (tui_nn.runs.config_diff). With nothing marked, the
highlighted run is shown. `w` follows the highlighted run in the watch view (a remote one
through runs.remote.FollowedRun, as `tui-nn watch HOST:RUN` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui_nn.runs import RecordedHistory, RunInfo, config_diff, discover_runs, load_history
from tui_nn.tui.screens.fleet import RemoteWatch
from tui_nn.tui.screens.worker_errors import NotifiesWorkerErrors
from tui_nn.tui.widgets.plot_visual import MatrixPlot

# Plot colours and the matching Rich colours of the table's marks.
COLORS = [("cyan+", "bright_cyan"), ("orange+", "dark_orange"), ("green+", "bright_green"),
          ("magenta+", "bright_magenta"), ("yellow+", "bright_yellow"), ("blue+", "bright_blue"),
          ("red+", "bright_red"), ("white", "white")]
MODES = ("val_loss", "train_loss", "metric")
MODE_TITLES = {"val_loss": "val loss per epoch", "train_loss": "train loss per epoch",
               "metric": "val metric per epoch"}


@dataclass(frozen=True)
class Row:
    """One run of the table: host None for this machine; `local` is where its files are read
    here (a remote run's mirror, runs.remote)."""

    key: str
    host: str | None
    run: RunInfo
    local: Path


@dataclass
class RunsLoaded(Message):
    rows: list[Row]
    error: str | None = None


@dataclass
class HistoriesLoaded(Message):
    histories: dict[str, RecordedHistory]


def read_roots(roots: list[str]) -> tuple[list[Row], str | None]:
    """Every run under every root (local folders and HOST:PATH, runs.remote), and one line per
    root that could not be read. A run under two roots given is listed once."""
    from tui_nn.runs.remote import list_roots, mirror, split_target
    rows: dict[str, Row] = {}
    errors = []
    for text, listing in zip(roots, list_roots(roots)):
        target = split_target(text)
        if listing.error is not None:
            errors.append(f"{target}: {listing.error}")
        for run in listing.runs:
            if target is None:
                row = Row(str(run.path), None, run, run.path)
            else:
                row = Row(f"{target.host}\0{run.path}", target.host, run,
                          mirror(target).local_dir(run.path))
            rows.setdefault(row.key, row)
    return list(rows.values()), "; ".join(errors) or None


class OverlayPlot(MatrixPlot):
    """Per-epoch curves of several runs on one axis."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.series: list[tuple[int, RunInfo, RecordedHistory]] = []  # (colour index, run, curves)
        self.mode = "val_loss"
        self.drawn_lines = 0  # curves drawn in the last render (tests)
        self.clipped = False  # the last render clipped a huge value (said under the plot)

    def render(self):
        plt = self.plt
        plt.clear_figure()
        plt.frame(True)
        self.drawn_lines = 0
        all_ys: list[float] = []
        metric_names = {h.metric or r.metric for _, r, h in self.series} - {None}
        title = MODE_TITLES[self.mode]
        if self.mode == "metric" and len(metric_names) == 1:
            # A name from a file: its escapes shown, not drawn as U+FFFD by the plot.
            title = f"val {next(iter(metric_names))[:20]} per epoch"
        plt.title(title if self.series else "runs: mark some with space")
        from tui_nn.tui.widgets.curves import (CLIPPED_NOTE, PLOT_LIMIT, clip_finite,
                                               compact_y_ticks, step_ticks)

        clipped = False
        for color, run, hist in self.series:
            xs, ys = [], []
            for e in hist.epochs:
                y = {"val_loss": e.val_loss, "train_loss": e.train_loss}.get(self.mode, e.value)
                if self.mode == "metric" and e.metric == "accuracy" and abs(y) < PLOT_LIMIT:
                    y *= 100  # (a huge one is drawn clipped as it is, not overflowed to inf)
                xs.append(e.epoch + 1)
                ys.append(y)
            xs, ys, clipped_here = clip_finite(xs, ys)
            clipped = clipped or clipped_here
            if xs:
                all_ys += ys
                plt.plot(xs, ys, marker="braille", color=COLORS[color % len(COLORS)][0])
                if len(xs) < 30:
                    plt.scatter(xs, ys, marker="●", color=COLORS[color % len(COLORS)][0])
                self.drawn_lines += 1
        ticks = compact_y_ticks(min(all_ys), max(all_ys)) if all_ys else None
        if ticks is not None:  # a diverged run's 1e35: '8e+35', not 36 digits
            plt.yticks(*ticks)
        last = max((len(h.epochs) for _, _, h in self.series), default=0)
        if last > 1:
            plt.xticks(*step_ticks(1, last, max(self.size.width, 10)))
        self.clipped = clipped
        plt.xlabel(f"epoch · {CLIPPED_NOTE}" if clipped else "epoch")
        return super().render()


class RunsScreen(RemoteWatch, NotifiesWorkerErrors, Screen):
    """Runs on disk; mark several to overlay their curves and compare their settings."""

    DEFAULT_CSS = """
    #runs-table { height: 2fr; min-height: 5; }
    #runs-bottom { height: 3fr; min-height: 8; border-top: solid $surface-lighten-2; }
    #runs-plot { width: 1fr; height: 1fr; }
    #runs-diff-box { width: 34; height: 1fr; border-left: vkey $surface-lighten-2; }
    .-wide #runs-diff-box, .-very-wide #runs-diff-box { width: 48; }
    #runs-diff { padding: 0 1; height: auto; }
    #runs-caption { height: 1; padding: 0 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("space", "toggle_mark", "Mark"),
        Binding("m", "cycle_mode", "Curve"),
        Binding("w", "watch_run", "Watch"),
        Binding("c", "resume_run", "Continue", tooltip="Resume the highlighted stopped run"),
        Binding("ctrl+r,f5", "reload", "Reload"),
        Binding("u", "clear_marks", "Unmark all", show=False),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, root: str | Path | Sequence[str] = "runs") -> None:
        super().__init__()
        self.roots = [str(root)] if isinstance(root, (str, Path)) else [str(r) for r in root]
        self.root = Path(self.roots[0])
        from tui_nn.runs.remote import split_target, typed_root
        # A host column when a run may be on another machine, or under another root given.
        self.several = len(self.roots) > 1 or any(split_target(r) for r in self.roots)
        self.rows: list[Row] = []
        # The roots as typed, inert where decoded (runs.remote.Target), as `tui-nn runs` says them.
        self.shown_root = " ".join(typed_root(r).shown for r in self.roots)[:80]
        self.runs: list[RunInfo] = []
        self.marked: list[str] = []  # row keys, in marking order: #1, #2, ...
        self.histories: dict[str, RecordedHistory] = {}
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        with Vertical():
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="runs-caption")
            with Horizontal(id="runs-bottom"):
                yield OverlayPlot(id="runs-plot")
                with VerticalScroll(id="runs-diff-box"):
                    yield Static("", id="runs-diff")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "tui-nn runs"
        self.sub_title = self.shown_root
        table = self.query_one(DataTable)
        table.add_column("", key="mark", width=2)
        if self.several:
            table.add_column("host", key="host")
        # Run names usually hold the model and dataset: those columns go last, so that an
        # 80-column terminal shows status, epochs, best, time and size beside the name.
        for label, key in (("run", "run"), ("status", "status"), ("epochs", "epochs"),
                           ("best", "best"), ("time", "time"), ("size", "size"),
                           ("model", "model"), ("dataset", "dataset")):
            table.add_column(label, key=key)
        table.focus()
        self._load_runs()

    # ---- loading (threads) -----------------------------------------------------------------
    @work(thread=True, name="runs", group="runs", exclusive=True, exit_on_error=False)
    def _load_runs(self) -> None:
        if self.several:
            self.post_message(RunsLoaded(*read_roots(self.roots)))
            return
        try:
            runs = discover_runs(self.root)
        except OSError as e:
            why = e.strerror or type(e).__name__  # str(e) repeats the raw path
            self.post_message(RunsLoaded([], f"cannot read {self.shown_root}: {why}"))
            return
        self.post_message(RunsLoaded([Row(str(r.path), None, r, r.path) for r in runs]))

    @work(thread=True, name="histories", group="histories", exclusive=True,
          exit_on_error=False)
    def _load_histories(self, rows: list[Row]) -> None:
        self.post_message(HistoriesLoaded({r.key: load_history(r.local) for r in rows}))

    @on(RunsLoaded)
    def _runs_loaded(self, message: RunsLoaded) -> None:
        from tui_nn.fmt import best_label, epochs_label, fmt_bytes, fmt_hms, status_label

        self.loaded = True
        self.rows = message.rows
        self.runs = [row.run for row in self.rows]
        known = {row.key for row in self.rows}
        self.marked = [k for k in self.marked if k in known]
        self.histories = {}
        table = self.query_one(DataTable)
        table.clear()
        for row in self.rows:
            r = row.run
            host = [_cell(row.host or "local")] if self.several else []
            # Names and config values come inert from the files (runs.info): Text, never markup.
            table.add_row(self._mark(row.key), *host, _cell(r.name),
                          Text(status_label(r), style=_status_style(r.status)),
                          Text(epochs_label(r), justify="right"),
                          _cell(best_label(r.metric, r.best_value)),
                          Text(fmt_hms(r.duration_s), justify="right"),
                          Text(fmt_bytes(r.size_bytes), justify="right"), _cell(r.model),
                          _cell(r.dataset), key=row.key)
        root = f"{self.shown_root}/" if not self.several else f"{len(self.roots)} roots"
        if message.error:
            caption = Text(message.error)
        elif not self.runs:
            caption = Text(f"no runs under {root} yet (train one: s on the Train tab)")
        else:
            caption = Text.assemble(f"{len(self.runs)} runs under {root} · ", ("space", "b"),
                                    " mark · ", ("m", "b"), " curve · ", ("w", "b"), " watch")
        self.query_one("#runs-caption", Static).update(caption)
        self._selection_changed()

    @on(HistoriesLoaded)
    def _histories_loaded(self, message: HistoriesLoaded) -> None:
        self.histories.update(message.histories)
        self._show()

    # ---- selection -------------------------------------------------------------------------
    def _mark(self, key: str) -> Text:
        if key not in self.marked:
            return Text(" ")
        i = self.marked.index(key)
        return Text(f"#{i + 1}", style=f"bold {COLORS[i % len(COLORS)][1]}")

    def highlighted_row(self) -> Row | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row is None or table.row_count == 0:
            return None
        return self.rows[min(table.cursor_row, len(self.rows) - 1)]

    def shown(self) -> list[Row]:
        """The runs compared: the marked ones, else the highlighted one."""
        by_key = {r.key: r for r in self.rows}
        if self.marked:
            return [by_key[k] for k in self.marked if k in by_key]
        row = self.highlighted_row()
        return [row] if row is not None else []

    def action_toggle_mark(self) -> None:
        row = self.highlighted_row()
        if row is None:
            return
        if row.key in self.marked:
            self.marked.remove(row.key)
        else:
            self.marked.append(row.key)
        self._update_marks()
        self._selection_changed()

    def action_clear_marks(self) -> None:
        self.marked.clear()
        self._update_marks()
        self._selection_changed()

    def _update_marks(self) -> None:
        table = self.query_one(DataTable)
        for row in self.rows:
            table.update_cell(row.key, "mark", self._mark(row.key), update_width=True)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if not self.marked:
            self._selection_changed()

    def _selection_changed(self) -> None:
        missing = [r for r in self.shown() if r.key not in self.histories]
        if missing:
            self._load_histories(missing)
        self._show()

    def _show(self) -> None:
        rows = self.shown()
        plot = self.query_one(OverlayPlot)
        plot.series = [(self.marked.index(r.key) if r.key in self.marked else 0, r.run,
                        self.histories[r.key]) for r in rows if r.key in self.histories]
        plot.refresh()
        self.query_one("#runs-diff", Static).update(self._diff_text(rows))

    def _diff_text(self, rows: list[Row]) -> Text:
        """Rich Text built piece by piece: names, messages and values are file data."""
        runs = [row.run for row in rows]
        if not runs:
            return Text("no run selected", style="dim")
        if len(runs) == 1:
            r = runs[0]
            lines = [Text(r.name, style="b")]
            if r.message:
                lines.append(Text(r.message[:500], style="red"))
            lines.append(Text("mark two or more runs (space) to see what differs", style="dim"))
            for key in ("lr", "batch_size", "optimizer", "epochs", "schedule", "seed", "device"):
                if key in r.config:
                    lines.append(Text(f"{key} {_value(r.config[key])}"))
            return Text("\n").join(lines)
        diff = config_diff(runs)
        lines = [Text(f"{len(diff)} setting{' differs' if len(diff) == 1 else 's differ'}",
                      style="b")]
        for key, values in diff.items():
            lines.append(Text(key[:60], style="b"))
            for i, (r, v) in enumerate(zip(rows, values)):
                color = COLORS[self.marked.index(r.key) % len(COLORS)][1] \
                    if r.key in self.marked else "white"
                lines.append(Text.assemble("  ", (f"#{i + 1}", color), f" {_value(v)}"))
        if not diff:
            lines.append(Text("same settings (seed and data order aside)", style="dim"))
        return Text("\n").join(lines)

    # ---- actions ---------------------------------------------------------------------------
    def action_cycle_mode(self) -> None:
        plot = self.query_one(OverlayPlot)
        plot.mode = MODES[(MODES.index(plot.mode) + 1) % len(MODES)]
        plot.refresh()

    def action_reload(self) -> None:
        self._load_runs()

    def action_watch_run(self) -> None:
        row = self.highlighted_row()
        if row is None:
            return
        if row.host is not None:  # followed over ssh, steered through its forwarded socket
            from tui_nn.runs.remote import Target
            self._open_watch(Target(row.host, str(row.run.path)))
            return
        from tui_nn.tui.screens.tb_watch import watch_screen_for
        self.app.push_screen(watch_screen_for(row.run.path))  # a TensorBoard log: its own view

    def action_resume_run(self) -> None:
        """Continue the highlighted run from its last.pt in the app's Train tab."""
        row = self.highlighted_row()
        if row is None:
            return
        run = row.run
        if row.host is not None:
            # The app's notify makes the path inert; the name is (runs.info), the host checked.
            self.notify(f"{run.name} is on {row.host}: resume it there (ssh {row.host} tui-nn "
                        f"train MODEL --resume {run.path})", severity="warning", markup=False)
            return
        if not run.resumable:
            self.notify(f"{run.name} is {run.status}"
                        f"{'' if run.has_checkpoint else ' and has no checkpoint'}: only "
                        "stopped, interrupted or failed runs with a last.pt can be resumed",
                        severity="warning", markup=False)
            return
        main = getattr(self.app, "main", None)
        if main is None or not hasattr(main, "resume_run"):
            self.notify(f"to resume, open the app: tui-nn train MODEL --resume "
                        f"{run.path}",  # app.notify makes the path inert
                        severity="warning", markup=False)
            return
        if main.bridge.running:
            self.notify("a run is already in progress", severity="warning", markup=False)
            return
        while len(self.app.screen_stack) > 1 and self.app.screen is not main:
            self.app.pop_screen()
        main.resume_run(str(run.path))

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()


def _status_style(status: str) -> str:
    return {"running": "green", "finished": "", "stopped": "yellow", "failed": "red",
            "interrupted": "yellow"}.get(status, "")


def _value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)[:40]  # inert: runs.records.read_config


def _cell(value: Any) -> Text:
    return Text(str(value)[:60])
