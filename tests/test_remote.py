"""Runs on other machines over a real sshd (tests/sshd.py): `tui-nn runs HOST:PATH ...`,
`tui-nn control HOST:RUN`, offset reads, and the hosts a fleet always has: one down (closed
port), one hanging (a listener that never answers). The "remote" is this machine reached
through ssh, so a run trained into tmp_path is also a run on testbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import fastproc
import pytest

import sshd
from tui_nn.runs.remote import Target, split_target

pytestmark = pytest.mark.skipif(sshd.MISSING is not None, reason=str(sshd.MISSING))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    hang = sshd.SilentListener()
    srv = sshd.start_sshd(tmp_path_factory.mktemp("ssh"), hang.port)
    yield srv
    sshd.stop(srv)
    hang.close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A runs folder with one finished headless run in it."""
    root = tmp_path_factory.mktemp("runs")
    fastproc.run(["train", "curve", "--epochs", "2", "--headless", "--run-dir", str(root / "r1")],
                 check=True, capture_output=True, timeout=300)
    return root


def _tui(server, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The local `tui-nn ARGS`, forked by fastproc (what runs over ssh is a fresh interpreter)."""
    return fastproc.run(list(args), capture_output=True, text=True, env=server.env(),
                        timeout=timeout)


def test_host_path_is_split_as_scp_splits_it(tmp_path, monkeypatch):
    assert split_target("gpu1:~/proj/runs") == Target("gpu1", "~/proj/runs")
    assert split_target("me@gpu1:/data/runs") == Target("me@gpu1", "/data/runs")
    assert split_target("gpu1:") == Target("gpu1", "")
    assert split_target("[::1]:runs") == Target("[::1]", "runs")
    for local in ("./a:b", "/x/y:z", "runs", "C", ":x"):
        assert split_target(local) is None
    monkeypatch.chdir(tmp_path)
    (tmp_path / "h:p").mkdir()
    assert split_target("h:p") is None  # a local path that exists wins
    # An option where the host goes never reaches ssh.
    assert split_target("-oProxyCommand=touch /tmp/pwned:x") is None


def test_runs_lists_remote_and_local_alike_with_a_host_column(server, trained):
    local = json.loads(_tui(server, "runs", "--json", "--root", str(trained)).stdout)
    both = _tui(server, "runs", "--json", f"testbox:{trained}", str(trained))
    assert both.returncode == 0, both.stderr
    rows = json.loads(both.stdout)
    assert [r["host"] for r in rows] == ["testbox", "local"]
    keys = ("name", "model", "dataset", "status", "epochs_done", "epochs_total", "best_value",
            "last_value", "steps_done", "size_bytes", "metric", "resumable")
    for row in rows:
        assert {k: row[k] for k in keys} == {k: local[0][k] for k in keys}
    assert rows[0]["path"] == str(trained.resolve() / "r1")
    table = _tui(server, "runs", f"testbox:{trained}", str(trained)).stdout
    assert table.splitlines()[0].split()[:3] == ["host", "run", "model"]
    assert "testbox  r1" in table and "local    r1" in table


def test_a_down_and_a_hanging_host_are_rows_and_never_block_the_others(server, trained):
    from tui_nn.runs.ssh import CONNECT_TIMEOUT_S
    started = time.monotonic()
    result = _tui(server, "runs", "downbox:/x", "hangbox:/y", f"testbox:{trained}",
                  "testbox:/no/such/folder", "nokeybox:/z")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(ln.startswith("downbox") and "unreachable" in ln for ln in lines)
    assert any(ln.startswith("hangbox") and "unreachable" in ln for ln in lines)
    assert any(ln.startswith("testbox") and "finished" in ln for ln in lines)
    assert any("/no/such/folder" in ln and "unreadable" in ln for ln in lines)
    assert any(ln.startswith("nokeybox") and "unreachable" in ln for ln in lines)
    assert "Connection refused" in result.stdout and "no such directory" in result.stdout
    assert "Permission denied" in result.stdout  # BatchMode: no prompt waited on
    # In parallel: the hanging host costs its connect timeout once, not once per host.
    assert elapsed < CONNECT_TIMEOUT_S + 8, elapsed


def test_a_later_refresh_moves_only_the_appended_bytes(server, tmp_path, monkeypatch):
    from tui_nn.runs import remote
    monkeypatch.setenv("TUI_NN_SSH_CONFIG", str(server.config))
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "config.json").write_text('{"model": "mlp", "dataset": "blobs"}')
    line = '{"type":"StepMetrics","step":%d,"epoch":0,"loss":0.5}\n'
    (run / "metrics.jsonl").write_text("".join(line % i for i in range(100)))
    mirror = remote.mirror(Target("testbox", str(tmp_path / "runs")))
    first = mirror.refresh()
    assert first.error is None and first.runs[0].steps_done == 99
    appended = line % 100
    with open(run / "metrics.jsonl", "a") as f:
        f.write(appended)
    os.utime(run / "metrics.jsonl", (time.time() + 2, time.time() + 2))
    second = mirror.refresh()
    assert second.bytes_read == len(appended)
    assert second.runs[0].steps_done == 100
    assert mirror.refresh().bytes_read == 0  # nothing new: nothing crosses


def test_strings_from_a_remote_host_are_inert(server, tmp_path):
    run = tmp_path / "runs" / "evil\x1b[31mname"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(
        {"model": "\x1b]52;c;cGF3bmVk\x07m", "dataset": "[bold]x[/]\x1b[2J"}))
    (run / "metrics.jsonl").write_text('{"type":"Failed","message":"\\u001b[31mboom"}\n')
    result = _tui(server, "runs", f"testbox:{tmp_path / 'runs'}", "--json")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    row = json.loads(result.stdout)[0]
    for key in ("name", "model", "dataset", "message"):
        assert "\x1b" not in row[key] and "\x07" not in row[key], key
    table = _tui(server, "runs", f"testbox:{tmp_path / 'runs'}", str(tmp_path / "runs"))
    assert "\x1b" not in table.stdout and "\x07" not in table.stdout


def _records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
    return [json.loads(ln) for ln in lines if ln.endswith("}")]


def _wait(run: Path, test, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test(_records(run)):
            return
        time.sleep(0.05)
    raise AssertionError(f"never saw {what}")


def test_control_pauses_and_resumes_a_live_run_through_ssh(server, tmp_path):
    from tui_nn.engine.channel import SOCKET_FILE
    run = tmp_path / "run"
    proc = fastproc.popen(["train", "curve", "--epochs", "100000", "--headless", "--run-dir",
                           str(run)], stdout=fastproc.DEVNULL, stderr=fastproc.DEVNULL,
                          env=server.env())
    try:
        _wait(run, lambda r: any(x["type"] == "StepMetrics" for x in r)
              and (run / SOCKET_FILE).exists(), "a step")
        paused = _tui(server, "control", f"testbox:{run}", "pause")
        assert paused.returncode == 0, paused.stderr
        assert "pause taken" in paused.stdout and "paused" in paused.stdout
        _wait(run, lambda r: any(x["type"] == "StateChanged" and x.get("state") == "paused"
                                 for x in r), "the pause")
        resumed = _tui(server, "control", f"testbox:{run}", "resume")
        assert resumed.returncode == 0, resumed.stderr
        assert _tui(server, "control", f"testbox:{run}", "stop").returncode == 0
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Gone: said with the run's status, exit 1; no forward or socket left behind here.
    after = _tui(server, "control", f"testbox:{run}", "pause")
    assert after.returncode == 1 and "is not training: it is stopped" in after.stderr
    assert not list(Path("/tmp").glob("tui-nn-ssh-*/c*/control.sock"))


def test_control_on_a_bad_remote_target_says_why(server, tmp_path):
    missing = _tui(server, "control", f"testbox:{tmp_path}/nope", "pause")
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr
    down = _tui(server, "control", "downbox:/x", "pause")
    assert down.returncode == 1 and "downbox" in down.stderr and "Traceback" not in down.stderr


def test_the_portable_listing_prints_what_the_gnu_one_does(trained):
    """Without GNU find's -printf (BSD, busybox) the script falls back to stat/ls per file."""
    from tui_nn.runs import remote
    gnu = remote.list_script(str(trained))
    other = gnu.replace("-maxdepth 0 -printf ''", "-maxdepth 0 -no-such-test")
    assert other != gnu

    def lines(script):
        out = subprocess.run(["sh", "-s"], input=script.encode(), capture_output=True, timeout=60)
        found = []
        for ln in out.stdout.decode().splitlines():
            if ln.startswith("F "):  # the fallback has whole seconds only
                _, size, mtime, path = ln.split(" ", 3)
                ln = f"F {size} {int(float(mtime))} {path}"
            if not ln.startswith(("NOW", "PROC", "O ", "W ")):  # the /proc scan: GNU only
                found.append(ln)
        return sorted(found)

    portable = lines(other)
    assert lines(gnu) == portable
    assert sum(ln.startswith("F ") for ln in portable) == 4 and any(  # with its event file
        ln.startswith("D ") for ln in portable)


async def test_watch_follows_and_steers_a_run_over_ssh(server, tmp_path, monkeypatch):
    """`tui-nn watch HOST:RUN`: the app on the mirror, records arriving, `p` pausing the run
    over there through the forwarded socket, and the liveness said by the remote file."""
    from pilot_helpers import SIZE
    from pilot_helpers import wait_for_live as wait_for
    from tui_nn.engine.channel import SOCKET_FILE
    from tui_nn.runs.remote import FollowedRun
    from tui_nn.tui.screens.watch import WatchApp

    monkeypatch.setenv("TUI_NN_SSH_CONFIG", str(server.config))
    run = tmp_path / "live"
    proc = fastproc.popen(["train", "curve", "--epochs", "100000", "--headless", "--run-dir",
                           str(run)], stdout=fastproc.DEVNULL, stderr=fastproc.DEVNULL,
                          env=server.env())
    followed = None
    try:
        _wait(run, lambda r: any(x["type"] == "EpochMetrics" for x in r)
              and (run / SOCKET_FILE).exists(), "an epoch")
        followed = FollowedRun(Target("testbox", str(run)), every_s=0.3).start()
        assert followed.run_dir.name == "live" and followed.run_dir != run
        app = WatchApp(followed.run_dir, gpu_reader=followed.gpu_report,
                       liveness_of=followed.liveness)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.watch_screen
            await wait_for(pilot, lambda: screen.epochs_seen > 0, what="an epoch")
            await wait_for(pilot, lambda: screen.steerable, what="steerable")
            assert screen.status == "running"
            seen = screen.records_seen
            await wait_for(pilot, lambda: screen.records_seen > seen, what="new records")
            await pilot.press("p")
            await wait_for(pilot, lambda: any(
                x["type"] == "StateChanged" and x.get("state") == "paused"
                for x in _records(run)), what="the pause over there")
            await wait_for(pilot, lambda: screen._paused, what="the watcher sees the pause")
    finally:
        if followed is not None:
            followed.stop()
        proc.kill()
        proc.wait()


def test_fetches_are_batched_under_the_cap():
    from tui_nn.runs import remote
    cap = remote.MAX_METRICS_BYTES
    wanted = [("a", 0, cap // 2), ("b", 0, cap // 2), ("c", 0, cap + 1), ("d", 0, 10)]
    assert [[w[0] for w in b] for b in remote._batches(wanted)] == [["a", "b"], ["c"], ["d"]]
    assert remote._batches([]) == []


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_watch_over_ssh_in_a_real_terminal(server, trained, tmp_path):
    """`tui-nn watch testbox:RUN` in tmux: the app draws the remote run and q leaves it."""
    sock = f"tui-nn-test-{os.getpid()}"
    tmux = ["tmux", "-L", sock]
    command = f"{sys.executable} -m tui_nn watch testbox:{trained / 'r1'}; echo EXITED $?"
    env_args = [a for k in ("TUI_NN_SSH_CONFIG", "PYTHONPATH", "TUI_NN_CACHE")
                if k in server.env() for a in ("-e", f"{k}={server.env()[k]}")]
    subprocess.run([*tmux, "new-session", "-d", "-x", "120", "-y", "40", *env_args,
                    "sh", "-c", command + "; sleep 30"], check=True, cwd=tmp_path)
    try:
        screen = _tmux_wait(tmux, lambda text: "finished" in text and "r1" in text)
        assert "Traceback" not in screen
        subprocess.run([*tmux, "send-keys", "q"], check=True)
        screen = _tmux_wait(tmux, lambda text: "EXITED" in text)
        assert "EXITED 0" in screen
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def _tmux_wait(tmux: list[str], test, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True,
                              text=True).stdout
        if test(text):
            return text
        time.sleep(0.2)
    raise AssertionError(f"the terminal never showed it:\n{text}")


def test_each_host_says_its_gpus_or_that_it_has_none(server, trained, tmp_path):
    from tui_nn.runs import remote
    result = _tui(server, "runs", f"testbox:{trained}")
    assert "testbox: no GPU (no nvidia-smi)" in result.stdout
    # A host with nvidia-smi (a stand-in on PATH): its lines are checked numbers, 16 at most.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho '0, 87, 30000, 81559'\n"
                                     "echo '1, [N/A], 5, 81559'\necho '2, 3, \x1b[31m, 9'\n")
    (fake / "nvidia-smi").chmod(0o755)
    script = remote.list_script(str(trained))
    out = subprocess.run(["sh", "-s"], input=script.encode(), capture_output=True, timeout=60,
                         env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}).stdout
    mirror = remote.Mirror(Target("x", str(trained)))
    mirror._parse(out.decode())
    assert mirror.gpus == [remote.Gpu(0, 87, 30000, 81559)]


def test_a_dropped_connection_is_made_again_on_the_next_read(server, trained, monkeypatch):
    from tui_nn.runs import remote, ssh
    monkeypatch.setenv("TUI_NN_SSH_CONFIG", str(server.config))
    mirror = remote.mirror(Target("testbox", str(trained)))
    assert mirror.refresh().error is None
    host = ssh.host("testbox")
    host.close()  # the master ends, as when the link drops and ServerAlive gives up
    deadline = time.monotonic() + 10
    while host.socket_path().exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    again = mirror.refresh()
    assert again.error is None and [r.name for r in again.runs] == ["r1"]
    assert host.socket_path().is_socket()  # a new master, reused from here on


async def test_fleet_lists_every_host_live_and_steers_and_watches_a_run(server, trained,
                                                                        tmp_path, monkeypatch):
    from pilot_helpers import SIZE
    from pilot_helpers import wait_for_live as wait_for
    from tui_nn.engine.channel import SOCKET_FILE
    from tui_nn.tui.screens.fleet import FleetApp
    from tui_nn.tui.screens.watch import WatchScreen

    monkeypatch.setenv("TUI_NN_SSH_CONFIG", str(server.config))
    root = tmp_path / "runs"
    run = root / "live"
    proc = fastproc.popen(["train", "curve", "--epochs", "100000", "--headless", "--run-dir",
                           str(run)], stdout=fastproc.DEVNULL, stderr=fastproc.DEVNULL,
                          env=server.env())
    try:
        _wait(run, lambda r: any(x["type"] == "EpochMetrics" for x in r)
              and (run / SOCKET_FILE).exists(), "an epoch")
        app = FleetApp([Target("testbox", str(root)), Target("testbox", str(trained)),
                        Target("downbox", "/x"), Target("hangbox", "/y")], refresh_s=1.0)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.watch_screen
            await wait_for(pilot, lambda: len(screen.rows) == 2, what="both runs")
            await wait_for(pilot, lambda: "hangbox:/y" in str(
                screen.query_one("#fleet-hosts").render()), what="the hanging host's reason")
            hosts = str(screen.query_one("#fleet-hosts").render())
            assert "downbox:/x" in hosts and "testbox: no GPU" in hosts
            speeds = {p: v for ls in screen.listings if ls for p, v in ls.samples_per_s.items()}
            assert speeds.get(str(run.resolve())) and speeds.get(str(trained.resolve() / "r1"))
            table = screen.query_one("#fleet-table")
            live_row = next(i for i, key in enumerate(table.rows)
                            if key.value and key.value.endswith("/live"))
            table.move_cursor(row=live_row)
            await pilot.press("p")
            await wait_for(pilot, lambda: any(
                x["type"] == "StateChanged" and x.get("state") == "paused"
                for x in _records(run)), what="the pause over there")
            await pilot.press("x")  # asks first; cancel leaves the run alone
            await wait_for(pilot, lambda: app.screen is not screen, what="the question")
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is screen, what="the question gone")
            assert proc.poll() is None
            await pilot.press("w")
            await wait_for(pilot, lambda: isinstance(app.screen, WatchScreen), what="watch")
            await wait_for(pilot, lambda: app.screen.epochs_seen > 0, what="its epochs")
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is screen and screen.followed is None,
                           what="back to the fleet")
    finally:
        proc.kill()
        proc.wait()


def test_fleet_wants_host_paths(server, trained):
    result = _tui(server, "fleet", str(trained))
    assert result.returncode == 2 and "not HOST:PATH" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_last_epochs_speed_is_read_from_the_tail_only(tmp_path):
    from tui_nn.runs.remote import last_samples_per_s
    metrics = tmp_path / "metrics.jsonl"
    epoch = '{"type":"EpochMetrics","epoch":%d,"samples_per_s":%s}\n'
    metrics.write_text(epoch % (0, "1000") + epoch % (1, "2500.5") + '{"type":"StepMe')
    assert last_samples_per_s(metrics) == 2500.5
    metrics.write_text(epoch % (0, '"fast"') + epoch % (1, "1e300"))
    assert last_samples_per_s(metrics) is None  # not a number, or past any real speed
    assert last_samples_per_s(tmp_path / "none.jsonl") is None


def test_a_killed_processs_private_folder_is_swept_by_the_next(tmp_path):
    from tui_nn.runs import ssh
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = Path(f"/tmp/tui-nn-ssh-{dead.pid}-test")
    mine = Path(f"/tmp/tui-nn-ssh-{os.getpid()}-test")
    for d in (stale, mine):
        d.mkdir(mode=0o700, exist_ok=True)
        (d / "mirror").mkdir(exist_ok=True)
    try:
        ssh._sweep_stale()
        assert not stale.exists() and mine.exists()  # a live process's folder stays
    finally:
        shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(mine, ignore_errors=True)


def _live_run(server, run: Path) -> fastproc.Proc:
    """A headless training in `run` that goes on until killed (its socket up, an epoch done)."""
    from tui_nn.engine.channel import SOCKET_FILE
    proc = fastproc.popen(["train", "curve", "--epochs", "100000", "--headless", "--run-dir",
                           str(run)], stdout=fastproc.DEVNULL, stderr=fastproc.DEVNULL,
                          env=server.env())
    _wait(run, lambda r: any(x["type"] == "EpochMetrics" for x in r)
          and (run / SOCKET_FILE).exists(), "an epoch")
    return proc


@pytest.mark.slow
def test_a_long_paused_remote_run_is_paused_not_interrupted(server, tmp_path, monkeypatch):
    """The remote /proc says who writes metrics.jsonl: a run paused past the 2-minute age
    window still reads "paused" in `runs` and "running" to `watch`, and a killed one
    "interrupted" at once."""
    from tui_nn.runs.remote import FollowedRun
    monkeypatch.setenv("TUI_NN_SSH_CONFIG", str(server.config))
    run = tmp_path / "runs" / "held"
    proc = _live_run(server, run)
    try:
        assert _tui(server, "control", f"testbox:{run}", "pause").returncode == 0
        _wait(run, lambda r: any(x["type"] == "StateChanged" and x.get("state") == "paused"
                                 for x in r), "the pause")
        time.sleep(0.5)
        old = time.time() - 600  # as if paused ten minutes ago
        for f in run.iterdir():
            os.utime(f, (old, old))
        rows = json.loads(_tui(server, "runs", "--json", f"testbox:{run.parent}").stdout)
        assert [(r["status"], r["paused"]) for r in rows] == [("running", True)]
        table = _tui(server, "runs", f"testbox:{run.parent}", str(tmp_path)).stdout
        assert "testbox  held" in table and "paused" in table.split("testbox  held")[1]
        followed = FollowedRun(Target("testbox", str(run)), every_s=60).start()
        try:
            assert followed.liveness(run / "metrics.jsonl", None, False)[0] == "running"
        finally:
            followed.stop()
    finally:
        proc.kill()
        proc.wait()
    os.utime(run / "metrics.jsonl")  # written just now, but nobody holds it: not running
    rows = json.loads(_tui(server, "runs", "--json", f"testbox:{run.parent}").stdout)
    assert rows[0]["status"] == "interrupted"


@pytest.mark.slow
def test_remote_runs_are_named_as_local_ones_latest_a_name_a_prefix(server, trained, tmp_path,
                                                                    monkeypatch):
    """gpu1:~/runs/latest, gpu1:~/runs/NAME and --root gpu1:~/runs NAME resolve over there, as
    RUN does locally; a name that matches nothing says so (exit 2)."""
    from tui_nn.runs import remote
    from tui_nn.runs.remote import FollowedRun
    monkeypatch.setenv("TUI_NN_SSH_CONFIG", str(server.config))
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(trained / "r1", root / "old-run")  # started earlier than the live one
    proc = _live_run(server, root / "live-run")
    try:
        paused = _tui(server, "control", f"testbox:{root}/latest", "pause")
        assert paused.returncode == 0, paused.stderr
        assert f"testbox:{root.resolve()}/live-run: pause taken" in paused.stdout
        resumed = _tui(server, "control", "live", "resume", "--root", f"testbox:{root}")
        assert resumed.returncode == 0, resumed.stderr
        followed = FollowedRun(Target("testbox", f"{root}/latest"), every_s=60).start()
        try:
            assert followed.target.path == str((root / "live-run").resolve())
            assert followed.run_dir.name == "live-run"
        finally:
            followed.stop()
        # Named from the folder's listing alone: no run's files were copied to resolve it.
        assert not (remote.mirror(Target("testbox", str(root))).dir / "old-run").exists()
        old = FollowedRun(Target("testbox", f"{root}/old"), every_s=60).start()
        old.stop()
        assert old.last.runs[0].status == "finished"
        nope = _tui(server, "control", f"testbox:{root}/nope", "pause")
        assert nope.returncode == 2 and "no run 'nope'" in nope.stderr
        empty = _tui(server, "control", f"testbox:{tmp_path}/void/latest", "pause")
        assert empty.returncode == 2 and "no such run directory" in empty.stderr
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_each_hosts_gpus_over_ssh_nvml_first_then_nvidia_smi(server, trained, monkeypatch):
    """A box with tui-nn answers through its NVML, one with only nvidia-smi through that, one
    with neither says "no GPU" plainly; `watch`'s system pane shows the box's GPUs."""
    from tui_nn.runs.remote import FollowedRun
    out = _tui(server, "runs", f"testbox:{trained}", f"smibox:{trained}",
               f"nvmlbox:{trained}").stdout
    assert "testbox: no GPU (no nvidia-smi)" in out
    assert "smibox: GPU0 87% 29.3 GiB/79.6 GiB; GPU1 3% 512.0 MiB/79.6 GiB" in out
    assert "nvmlbox: GPU0 42% 10.0 GiB/80.0 GiB\n" in out  # not nvidia-smi's figures
    monkeypatch.setenv("TUI_NN_SSH_CONFIG", str(server.config))
    followed = FollowedRun(Target("smibox", str(trained / "r1")), every_s=60).start()
    followed.stop()
    report = followed.gpu_report()
    assert report.available and [(g.utilization_pct, g.memory_used_bytes >> 20)
                                 for g in report.gpus] == [(87.0, 30000), (3.0, 512)]
    none = FollowedRun(Target("testbox", str(trained / "r1")), every_s=60).start()
    none.stop()
    assert none.gpu_report().reason == "no GPU (no nvidia-smi)"


@pytest.mark.slow
async def test_the_apps_runs_screen_takes_several_roots_on_several_hosts(server, trained,
                                                                          monkeypatch):
    """`tui-nn tui --runs testbox:ROOT --runs ROOT --runs downbox:/x`: `r` lists every root
    with a host column (the down one said under the table), the curves of runs on two hosts
    overlay, and `w` follows the remote one over ssh."""
    from pilot_helpers import SIZE
    from pilot_helpers import wait_for_live as wait_for
    from tui_nn.tui.app import make_app
    from tui_nn.tui.screens.runs import OverlayPlot, RunsScreen
    from tui_nn.tui.screens.watch import WatchScreen

    monkeypatch.setenv("TUI_NN_SSH_CONFIG", str(server.config))
    app = make_app(runs_roots=[f"testbox:{trained}", str(trained), "downbox:/x"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.main.run_state != "loading", what="the app")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded,
                       what="the runs screen")
        screen = app.screen
        assert [(r.host, r.run.name) for r in screen.rows] == [("testbox", "r1"), (None, "r1")]
        table = screen.query_one("#runs-table")
        assert [str(table.get_row_at(i)[1]) for i in range(2)] == ["testbox", "local"]
        caption = str(screen.query_one("#runs-caption").render())
        assert "downbox:/x" in caption and "Connection refused" in caption
        await pilot.press("space", "down", "space")
        plot = screen.query_one(OverlayPlot)
        await wait_for(pilot, lambda: plot.drawn_lines == 2, what="two hosts' curves")
        table.move_cursor(row=0)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, WatchScreen), what="watch")
        await wait_for(pilot, lambda: app.screen.epochs_seen == 2, what="its epochs")
        assert app.screen.run_dir != trained / "r1"  # the mirror, read over ssh
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen and screen.followed is None,
                       what="back to the runs")


@pytest.mark.slow
def test_runs_app_and_tui_runs_refuse_a_missing_local_root(server, tmp_path):
    for args in (["runs", "--app", str(tmp_path / "nope")],
                 ["tui", "--runs", f"testbox:{tmp_path}", "--runs", str(tmp_path / "nope")]):
        result = _tui(server, *args)
        assert result.returncode == 2 and "nope: no such directory" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_remote_tensorboard_logs_are_listed_as_local_ones(server, trained, tmp_path,
                                                          monkeypatch):
    """A SummaryWriter log and a Lightning version dir over there are rows as they are here;
    a tui-nn run's own event files never cross (its metrics.jsonl says the same)."""
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter
    from tui_nn.runs import remote
    root = tmp_path / "runs"
    for log in (root / "exp1", root / "lightning_logs" / "version_0"):
        with SummaryWriter(str(log)) as w:
            for s in range(20):
                w.add_scalar("train/loss", 1.0 / (s + 1), s)
                w.add_scalar("val/accuracy", s / 40, s)
    shutil.copytree(trained / "r1", root / "own")
    with SummaryWriter(str(root / "own")) as w:
        w.add_scalar("train/loss", 1.0, 0)
    local = {r["name"]: r for r in json.loads(
        _tui(server, "runs", "--json", "--root", str(root)).stdout)}
    over = _tui(server, "runs", "--json", f"testbox:{root}")
    assert over.returncode == 0, over.stderr
    rows = {r["name"]: r for r in json.loads(over.stdout)}
    assert set(rows) == set(local) == {"exp1", "lightning_logs/version_0", "own"}
    for name, row in rows.items():
        for key in ("kind", "status", "steps_done", "metric", "best_value", "size_bytes"):
            assert row[key] == local[name][key], (name, key)
    assert rows["exp1"]["kind"] == "tensorboard" and rows["own"]["kind"] == "tui-nn"
    monkeypatch.setenv("TUI_NN_SSH_CONFIG", str(server.config))
    mirror = remote.mirror(Target("testbox", str(root)))
    assert mirror.refresh().error is None
    assert list((mirror.dir / "exp1").glob("events.out.tfevents.*"))
    assert not list((mirror.dir / "own").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_gpus_and_writers_are_asked_for_every_few_seconds_not_every_refresh(server, trained,
                                                                            monkeypatch):
    from tui_nn.runs import remote
    monkeypatch.setenv("TUI_NN_SSH_CONFIG", str(server.config))
    asked = []
    script = remote.list_script
    monkeypatch.setattr(remote, "list_script",
                        lambda path, slow=True: asked.append(slow) or script(path, slow))
    mirror = remote.Mirror(Target("smibox", str(trained)))
    first, second = mirror.refresh(), mirror.refresh()  # a watch's 1 s refreshes
    assert asked == [True, False]
    assert len(first.gpus) == 2 and second.gpus == first.gpus  # the last reading stands
    assert mirror.scan is not None and "r1/metrics.jsonl" in mirror.scan.owned
    monkeypatch.setattr(remote, "SLOW_EVERY_S", 0.0)
    mirror.refresh()
    assert asked == [True, False, True]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_runs_app_over_ssh_in_a_real_terminal(server, trained, tmp_path):
    """`tui-nn runs --app testbox:ROOT ROOT` in tmux: both hosts' rows drawn, q leaves."""
    sock = f"tui-nn-test-runs-{os.getpid()}"
    tmux = ["tmux", "-L", sock]
    command = (f"{sys.executable} -m tui_nn runs --app testbox:{trained} {trained}; "
               "echo EXITED $?")
    env_args = [a for k in ("TUI_NN_SSH_CONFIG", "PYTHONPATH", "TUI_NN_CACHE")
                if k in server.env() for a in ("-e", f"{k}={server.env()[k]}")]
    subprocess.run([*tmux, "new-session", "-d", "-x", "120", "-y", "40", *env_args,
                    "sh", "-c", command + "; sleep 30"], check=True, cwd=tmp_path)
    try:
        screen = _tmux_wait(tmux, lambda text: "2 runs under 2 roots" in text)
        assert "testbox  r1" in screen and "local    r1" in screen
        assert "Traceback" not in screen
        subprocess.run([*tmux, "send-keys", "q"], check=True)
        assert "EXITED 0" in _tmux_wait(tmux, lambda text: "EXITED" in text)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
