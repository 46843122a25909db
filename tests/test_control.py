"""Steering a detached run through its control channel: `tui-nn control` against real headless
processes (one, and a 2-process gloo DDP run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fastproc
import pytest

from tui_nn.engine.channel import SOCKET_FILE, send
from tui_nn.engine.checkpoint import load_checkpoint

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _control(run: Path, *args: str, user: int | None = None) -> subprocess.CompletedProcess:
    if user is None:  # forked from a process that imported torch (tests/fastproc.py)
        return fastproc.run(["control", str(run), *args], capture_output=True, text=True,
                            env=ENV, timeout=60)
    return subprocess.run([sys.executable, "-m", "tui_nn", "control", str(run), *args],
                          capture_output=True, text=True, env=ENV, timeout=60,
                          preexec_fn=lambda: os.setuid(user))


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _wait(run: Path, test, what: str, proc=None, timeout: float = 90) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (run / "metrics.jsonl").exists():
            records = _records(run)
            if test(records):
                return records
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"trainer exited: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError(f"never saw {what}")


def _steps(records: list[dict]) -> int:
    return max((r["step"] for r in records if r["type"] == "StepMetrics"), default=0)


@pytest.fixture
def live_run(tmp_path):
    run = tmp_path / "run"
    proc = fastproc.popen(["train", "curve", "--epochs", "100000", "--headless", "--run-dir",
                           str(run)], stdout=fastproc.PIPE, stderr=fastproc.PIPE, env=ENV)
    _wait(run, lambda r: _steps(r) > 0 and (run / SOCKET_FILE).exists(), "a step", proc)
    yield run, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_pause_checkpoint_lr_resume_and_stop_from_the_shell(live_run):
    run, proc = live_run
    assert oct((run / SOCKET_FILE).stat().st_mode & 0o777) == "0o600"
    res = _control(run, "pause")
    assert res.returncode == 0, res.stderr
    records = _wait(run, lambda r: any(x["type"] == "StateChanged" and x["state"] == "paused"
                                       for x in r), "paused", proc)
    paused_at = _steps(records)
    time.sleep(1.0)
    assert _steps(_records(run)) == paused_at  # no step while paused
    assert _control(run, "checkpoint").returncode == 0
    assert _control(run, "lr", "0.5").returncode == 0
    assert _control(run, "resume").returncode == 0
    records = _wait(run, lambda r: any(x["type"] == "LrScaled" for x in r)
                    and any(x["type"] == "CheckpointSaved" and x["reason"] == "requested"
                            for x in r), "lr and checkpoint", proc)
    saved = next(x for x in records if x.get("reason") == "requested")
    assert saved["step"] >= paused_at
    scaled = next(x for x in records if x["type"] == "LrScaled")
    assert scaled["factor"] == 0.5
    records = _wait(run, lambda r: any(x["type"] == "StepMetrics" and x["step"] > scaled["step"]
                                       for x in r), "a step after the lr change", proc)
    after = [x for x in records if x["type"] == "StepMetrics" and x["step"] > scaled["step"]]
    assert after[0]["lr"] == pytest.approx(scaled["lr"])
    assert _control(run, "stop").returncode == 0
    proc.wait(timeout=60)
    records = _records(run)
    assert records[-1]["type"] == "Finished" and records[-1]["status"] == "stopped"
    assert load_checkpoint(run)["step"] == records[-1]["step"]
    assert not (run / SOCKET_FILE).exists()  # the channel goes with the process


def test_a_finished_or_killed_run_is_refused_with_its_status(live_run):
    run, proc = live_run
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (run / SOCKET_FILE).exists()  # stale: the kernel does not remove it
    res = _control(run, "pause")
    assert res.returncode == 1
    assert "interrupted" in res.stderr and f"tui-nn train --resume {run} --headless" in res.stderr
    assert not (run / SOCKET_FILE).exists()  # detected and removed
    assert _control(run, "pause").returncode == 1


def test_usage_errors_exit_2(live_run):
    run, _ = live_run
    for args in (["lr"], ["lr", "0"], ["lr", "x"], ["pause", "3"], ["lr", "1e308"],
                 ["lr", "9" * 400]):
        res = _control(run, *args)
        assert res.returncode == 2, (args, res.stderr)
        assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    res = _control(run, "dance")  # not one of the actions: Typer's choice says which are
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "pause" in res.stderr and "dance" in res.stderr
    assert "from 1e-06 to 1e+06" in _control(run, "lr", "1e308").stderr
    res = _control(run, "lr", "-1")  # an option to Typer: its own usage error
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert _control(run.parent / "nope", "pause").returncode == 2


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="needs root to act as another user")
def test_another_users_socket_is_refused(tmp_path):
    """The socket is 0600: a process of another user (here: nobody, forked from the test)
    cannot steer the run, and is told why."""
    import tempfile

    from tui_nn.engine.channel import ChannelError, ControlServer, is_steerable

    class Controls:
        paused = False
        calls: list[str] = []

        def pause(self):
            self.calls.append("pause")

    shared = Path(tempfile.mkdtemp(dir="/tmp"))
    os.chmod(shared, 0o755)  # others may look in; the socket itself stays 0600
    controls = Controls()
    server = ControlServer(shared, controls).start()
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the other user
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            try:
                send(shared, "pause", timeout=2)
                message = "steered"
            except ChannelError as e:
                message = str(e)
            message += " | " + is_steerable(shared)[1]
            os.write(write, message.encode())
            os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        message = os.read(read, 4096).decode()
    finally:
        server.close()
    assert "another user" in message and "steered" not in message
    assert "read-only" in message
    assert controls.calls == []


def test_a_malformed_request_gets_an_answer_not_a_crash(live_run):
    import socket
    run, proc = live_run
    for raw in (b"not json\n", b'{"action": "lr", "factor": "nan"}\n', b"[" * 100000 + b"\n"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(run / SOCKET_FILE))
        s.sendall(raw)
        answer = json.loads(s.makefile().readline())
        s.close()
        assert answer["ok"] is False
    assert send(run, "checkpoint")["ok"] is True
    assert proc.poll() is None


@pytest.mark.slow
def test_a_distributed_run_takes_each_command_on_every_rank(tmp_path):
    run = tmp_path / "ddp"
    env = {**ENV, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    # The tui-nn parent forked by fastproc; its torchrun agent starts fresh ranks.
    proc = fastproc.popen(["train", "diabetes", "--epochs", "100000", "--batch-size", "32",
                           "--headless", "--run-dir", str(run), "--nproc-per-node", "2"],
                          stdout=fastproc.PIPE, stderr=fastproc.PIPE, env=env)
    try:
        _wait(run, lambda r: _steps(r) > 0 and (run / SOCKET_FILE).exists(), "a step", proc,
              timeout=180)
        assert _control(run, "pause").returncode == 0
        records = _wait(run, lambda r: any(x.get("state") == "paused" for x in r), "paused",
                        proc)
        time.sleep(1.0)
        paused_at = _steps(_records(run))
        time.sleep(1.0)
        assert _steps(_records(run)) == paused_at  # both ranks wait: no collective times out
        assert _control(run, "lr", "0.5").returncode == 0
        assert _control(run, "resume").returncode == 0
        _wait(run, lambda r: any(x["type"] == "LrScaled" for x in r) and _steps(r) > paused_at,
              "lr scaled and training again", proc)
        assert _control(run, "stop").returncode == 0
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    records = _records(run)
    assert records[-1]["type"] == "Finished" and records[-1]["status"] == "stopped"


@pytest.fixture
def channel(tmp_path):
    """A channel served for a bare Controls (the Trainer's flags), no training: fast."""
    from tui_nn.engine.channel import ControlServer
    from tui_nn.engine.controls import Controls
    controls = Controls()
    server = ControlServer(tmp_path, controls).start()
    yield tmp_path, controls
    server.close()


def _raw(run: Path, raw: bytes) -> dict:
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(run / SOCKET_FILE))
        s.sendall(raw)
        return json.loads(s.makefile().readline())


def test_a_400_digit_factor_is_refused_and_the_next_request_answered(channel):
    run, controls = channel
    for factor in ("9" * 400, "1e308", "1e-300", "true", '"2"', "0", "-1"):
        answer = _raw(run, b'{"action": "lr", "factor": %s}\n' % factor.encode())
        assert answer["ok"] is False and "1e-06 to 1e+06" in answer["error"], factor
    assert controls.take_lr_factor() == 1.0  # none of them reached the run
    assert send(run, "lr", 0.5, timeout=2)["ok"] is True
    assert controls.take_lr_factor() == 0.5
    for _ in range(3):  # gathered before the next step, the product is bounded too
        send(run, "lr", 1e3, timeout=2)
    assert "not yet applied" in send(run, "lr", 1e3, timeout=2)["error"]
    assert controls.take_lr_factor() == pytest.approx(1e6)


def test_idle_and_slow_clients_never_block_a_good_one(channel):
    """Ten idle clients and one sending a byte a second: a good request is answered at once,
    and the slow ones are dropped after the channel's deadline."""
    import socket

    from tui_nn.engine import channel as module
    deadline_s = getattr(module, "CLIENT_DEADLINE_S", 3.0)  # (main before issue 26 had none)
    run, controls = channel
    idle = []
    for _ in range(10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(run / SOCKET_FILE))
        idle.append(s)
    loris = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    loris.connect(str(run / SOCKET_FILE))
    try:
        started = time.monotonic()
        for i in range(4):
            loris.sendall(b'{"action"'[i:i + 1])
            t0 = time.monotonic()
            assert send(run, "pause", timeout=5)["ok"] is True
            assert time.monotonic() - t0 < 1.5  # not behind the idle ones (2 s each before)
            time.sleep(0.5)
        assert controls.paused
        loris.settimeout(deadline_s + 3)
        answer = json.loads(loris.makefile().readline())  # dropped, with a reason
        assert answer["ok"] is False and "no request within" in answer["error"]
        assert time.monotonic() - started < deadline_s + 2
        idle[0].settimeout(3)
        assert b"no request" in idle[0].recv(4096)
    finally:
        for s in [*idle, loris]:
            s.close()


def test_the_apps_lr_key_past_the_range_is_a_message_not_a_crash():
    """Twenty `l` presses while paused gather 0.5**20 < 1e-6: refused, said, nothing raised."""
    from tui_nn.tui.screens.run_control import RunController

    class Bridge:
        def __init__(self):
            from tui_nn.engine.controls import Controls
            self.trainer = Controls()

        def scale_lr(self, factor):
            self.trainer.scale_lr(factor)
            return True

    class Paused(RunController):
        state = "paused"  # a plain attribute: the controller is never mounted

    logged = []
    run = Paused.__new__(Paused)
    run.__dict__.update(bridge=Bridge(), note=lambda text, style="": logged.append(style))
    for _ in range(20):
        run.halve_lr()
    assert logged.count("dim") == 19 and logged[-1] == "warning"
