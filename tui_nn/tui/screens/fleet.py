"""`tui-nn fleet HOST:PATH ...`: every run on every host in one live table, each host's GPUs,
and the highlighted run watched (`w`) or steered (`p c l x`) over ssh (runs.remote).

Every root is read at once, a thread each, every REFRESH_S, and shown as it answers; one that
is down or hangs is a row that says so and costs only its own connect timeout. Strings from the
hosts come inert from the decoder and are shown as Text, never markup."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui_nn.fmt import best_label, epochs_label, fmt_bytes, fmt_hms, status_label
from tui_nn.runs.remote import Listing, Target, gpu_summary, mirror
from tui_nn.tui.screens.watch import STEER_BINDINGS
from tui_nn.tui.viewer_app import ViewerApp

REFRESH_S = 5.0


@dataclass
class HostLoaded(Message):
    """One root read: each host's rows show as soon as it answers, not with the slowest."""

    index: int
    listing: Listing


class RemoteWatch:
    """For a screen that lists remote runs: `_open_watch(target)` pushes the watch screen on
    a FollowedRun of it, which stops when the screen is back on top."""

    followed = None  # the FollowedRun of a pushed watch screen

    @work(thread=True, name="open-watch", group="open-watch", exclusive=True,
          exit_on_error=False)
    def _open_watch(self, target: Target) -> None:
        from tui_nn.runs.remote import FollowedRun, NotARun
        from tui_nn.runs.ssh import SshError
        from tui_nn.tui.screens.watch import WatchScreen
        try:
            followed = FollowedRun(target).start()
        except (NotARun, SshError) as e:
            self.app.call_from_thread(self.notify, f"{target}: {e}",
                                      severity="warning", markup=False)
            return
        self.followed = followed
        screen = WatchScreen(followed.run_dir, gpu_reader=followed.gpu_report,
                             liveness_of=followed.liveness)
        self.app.call_from_thread(self.app.push_screen, screen)

    def on_screen_resume(self) -> None:
        if self.followed is not None:  # back from a watched run: stop following it
            self.followed.stop()
            self.followed = None


class FleetScreen(RemoteWatch, Screen):
    DEFAULT_CSS = """
    #fleet-table { height: 1fr; }
    #fleet-hosts { height: auto; max-height: 12; padding: 0 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("w", "watch_run", "Watch"),
        *STEER_BINDINGS,
        Binding("ctrl+r,f5", "reload", "Reload"),
    ]

    def __init__(self, targets: list[Target], refresh_s: float = REFRESH_S) -> None:
        super().__init__()
        self.targets = targets
        self.refresh_s = refresh_s
        self.rows: dict[str, tuple[str, Any]] = {}  # row key -> (host, RunInfo)
        self.listings: list[Listing | None] = [None] * len(targets)  # None: not read yet
        self._lock = threading.Lock()
        self._reading: set[int] = set()  # roots being read now

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        with Vertical():
            yield DataTable(id="fleet-table", cursor_type="row", zebra_stripes=True)
            yield Static("reading the hosts…", id="fleet-hosts")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "tui-nn fleet"
        self.sub_title = " ".join(str(t) for t in self.targets)[:100]  # inert: Target.__str__
        table = self.query_one(DataTable)
        for label in ("host", "run", "status", "epochs", "best", "samples/s", "time", "size",
                      "model"):
            table.add_column(label, key=label)
        table.focus()
        self._load()
        self.set_interval(self.refresh_s, self._load)

    def action_reload(self) -> None:
        self._load()

    def _load(self) -> None:
        """Read every root not still being read (a hanging host is asked again only once its
        last try timed out: tries never pile up)."""
        with self._lock:
            idle = [i for i in range(len(self.targets)) if i not in self._reading]
            self._reading.update(idle)
        for i in idle:
            threading.Thread(target=self._read_one, args=(i,), daemon=True).start()

    def _read_one(self, i: int) -> None:
        try:
            listing = mirror(self.targets[i]).refresh()
        finally:
            with self._lock:
                self._reading.discard(i)
        self.post_message(HostLoaded(i, listing))

    @on(HostLoaded)
    def _loaded(self, message: HostLoaded) -> None:
        self.listings[message.index] = message.listing
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear()
        self.rows = {}
        for target, ls in zip(self.targets, self.listings):
            if ls is None:
                table.add_row(target.host[:24], target.shown_path[:40] or "~",
                              Text("reading…", style="dim"), "", "", "", "", "", "")
                continue
            host = ls.target.host[:24]  # checked by split_target: no control characters
            if ls.error:
                table.add_row(host, ls.target.shown_path[:40] or "~",
                              Text("unreachable", style="red"), "", "", "", "", "", "")
            for r in ls.runs:
                key = f"{ls.target.host}\0{r.path}"
                if key in self.rows:  # the same run under two roots given
                    continue
                self.rows[key] = (ls.target.host, r)
                table.add_row(host, Text(r.name), Text(status_label(r)), epochs_label(r),
                              best_label(r.metric, r.best_value),
                              _speed(ls.samples_per_s.get(str(r.path))),
                              fmt_hms(r.duration_s), fmt_bytes(r.size_bytes), Text(r.model),
                              key=key)
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        done = [ls for ls in self.listings if ls is not None]
        problems = "".join(f"{ls.target}: {ls.error}\n" for ls in done if ls.error)
        self.query_one("#fleet-hosts", Static).update(Text(problems + gpu_summary(done)))

    def highlighted(self) -> tuple[str, Any] | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.rows.get(key)

    def action_steer(self, what: str) -> None:
        picked = self.highlighted()
        if picked is None:
            return
        host, run = picked
        if what == "toggle":
            what = "resume" if run.paused else "pause"
        self._steer(Target(host, str(run.path)), what, 0.5 if what == "lr" else None)

    def action_stop_run(self) -> None:
        picked = self.highlighted()
        if picked is None:
            return
        host, run = picked
        target = Target(host, str(run.path))
        from rich.markup import escape
        from tui_nn.tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self._steer(target, "stop", None)

        self.app.push_screen(ConfirmScreen(  # the name comes from the host: escaped, not markup
            f"Stop the run {escape(run.name[:60])} on {escape(host[:40])}"
            "? It checkpoints and ends.", confirm="Stop run"), answered)

    @work(thread=True, name="steer", group="steer", exit_on_error=False)
    def _steer(self, target: Target, action: str, factor: float | None) -> None:
        from tui_nn.engine.channel import ChannelError
        from tui_nn.runs.remote import NotARun, send_control
        from tui_nn.runs.ssh import SshError
        try:
            answer = send_control(target, action, factor)
        except (ChannelError, NotARun, SshError) as e:
            text, severity = f"{target}: {e}", "warning"
        else:
            text = (f"{target}: {action} taken" if answer.get("ok")
                    else f"{target}: {answer.get('error') or 'refused'}")
            severity = "information" if answer.get("ok") else "warning"
        self.app.call_from_thread(self.notify, text, severity=severity,  # app.notify: inert
                                  markup=False)
        self.app.call_from_thread(self._load)

    def action_watch_run(self) -> None:
        picked = self.highlighted()
        if picked is not None:
            self._open_watch(Target(picked[0], str(picked[1].path)))


def _speed(value: float | None) -> Text:
    return Text("" if value is None else f"{value:,.0f}", justify="right")


class FleetApp(ViewerApp):
    TITLE = "tui-nn fleet"

    def __init__(self, targets: list[Target], refresh_s: float = REFRESH_S) -> None:
        super().__init__(FleetScreen(targets, refresh_s))
