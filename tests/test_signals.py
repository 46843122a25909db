"""SIGTERM/SIGHUP to a headless run whose step never ends (issue 26.6): after the grace period
($TUI_NN_STOP_GRACE_S) the process exits 128+n, says the step did not finish and keeps the last
checkpoint; a second SIGTERM ends it at once."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import fastproc
import pytest

from tui_nn.engine.checkpoint import load_checkpoint

HANGING_MODEL = textwrap.dedent("""
    import os, time
    import torch
    from torch import nn

    class Net(nn.Module):
        '''Trains a few steps, then a forward that never returns (a stuck collective, say).'''
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(1, 1)
            self.calls = 0

        def forward(self, x):
            if self.training and torch.is_grad_enabled():
                self.calls += 1
                if self.calls > 6:
                    open(os.environ["HANG_MARK"], "w").close()
                    while True:
                        time.sleep(3600)
            return self.fc(x)
""")


def _hanging_run(tmp_path: Path, grace: str) -> tuple[fastproc.Proc, Path]:
    (tmp_path / "hang.py").write_text(HANGING_MODEL)
    mark, run = tmp_path / "hanging", tmp_path / "run"
    env = {**os.environ, "HANG_MARK": str(mark), "TUI_NN_STOP_GRACE_S": grace,
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = fastproc.popen(["train", "hang.py:Net", "--dataset", "curve", "--epochs", "1000",
                           "--headless", "--run-dir", str(run)], cwd=tmp_path, env=env,
                          stdout=fastproc.PIPE, stderr=fastproc.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not mark.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the model never hung: {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    return proc, run


def _ends(proc: fastproc.Proc, within: float) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"still running {within} s after the signal") from None
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_step_that_never_ends_is_given_up_after_the_grace_period(tmp_path, sig):
    proc, run = _hanging_run(tmp_path, grace="2")
    t0 = time.monotonic()
    proc.send_signal(sig)
    code, err = _ends(proc, within=30)
    assert code == 128 + sig and time.monotonic() - t0 >= 2
    assert "its step did not finish within 2 s" in err and sig.name in err
    assert "Traceback" not in err
    assert f"continue with: tui-nn train --resume {run} --headless" in err
    assert load_checkpoint(run)["step"] == 0  # the last checkpoint, whole
    assert not (run / "control.sock").exists()


def test_a_second_sigterm_ends_the_run_at_once(tmp_path):
    proc, run = _hanging_run(tmp_path, grace="600")
    proc.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    assert proc.poll() is None  # within its grace period: waiting for the step
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code, err = _ends(proc, within=20)
    assert code == 143 and time.monotonic() - t0 < 10
    assert "a second SIGTERM" in err
    assert load_checkpoint(run)["step"] == 0


@pytest.mark.parametrize("raw, expected", [(None, 30.0), ("5", 5.0), ("0", 0.0), ("abc", 30.0),
                                           ("-1", 30.0), ("inf", 30.0), ("nan", 30.0)])
def test_the_grace_period_comes_from_the_environment(monkeypatch, raw, expected):
    from tui_nn.engine.stop_signals import GRACE_ENV, stop_grace_s
    if raw is None:
        monkeypatch.delenv(GRACE_ENV, raising=False)
    else:
        monkeypatch.setenv(GRACE_ENV, raw)
    assert stop_grace_s() == expected


EXITING_MODEL = textwrap.dedent("""
    from torch import nn

    class Exits(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(1, 1)

        def forward(self, x):
            raise SystemExit(0)

    class Interrupts(Exits):
        def forward(self, x):
            raise KeyboardInterrupt
""")


@pytest.mark.parametrize("cls, raised", [("Exits", "SystemExit(0)"),
                                         ("Interrupts", "KeyboardInterrupt()")])
def test_a_model_that_raises_systemexit_or_keyboardinterrupt_fails_train_and_inspect(
        tmp_path, cls, raised):
    """Issue 26.7: both exited 0 (or 130) without a word before."""
    (tmp_path / "exits.py").write_text(EXITING_MODEL)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    for args in (["train", f"exits.py:{cls}", "--dataset", "curve", "--epochs", "1",
                  "--headless", "--run-dir", str(tmp_path / "run")],
                 ["inspect", f"exits.py:{cls}", "--input", "1"]):
        res = fastproc.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=120)
        assert res.returncode == 1, (args, res.stderr)
        assert f"raised {raised}" in res.stderr and "an error of that code" in res.stderr
        assert "Traceback" not in res.stderr


def test_a_real_ctrl_c_is_not_taken_for_the_models():
    from tui_nn.engine.stop_signals import (SignalInterrupt, marked_interrupts,
                                            raised_by_user_code)
    assert raised_by_user_code(SystemExit(0))
    assert not raised_by_user_code(SignalInterrupt())
    assert not raised_by_user_code(KeyboardInterrupt())  # Python's own handler: a Ctrl-C
    with marked_interrupts():
        assert raised_by_user_code(KeyboardInterrupt())  # ours raises SignalInterrupt
        with pytest.raises(SignalInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)


def _app_in_a_terminal(tmp_path: Path, *args: str,
                       grace: str = "2") -> tuple[fastproc.Proc, bytearray]:
    """`tui-nn tui ARGS` on a pseudo-terminal (the app stays headless without one), its
    output drained so that it never blocks writing."""
    import pty
    import threading
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "HANG_MARK": str(tmp_path / "hanging"),
           "TUI_NN_STOP_GRACE_S": grace, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = fastproc.popen(["tui", *args], stdin=slave, stdout=slave, stderr=slave,
                          cwd=tmp_path, env=env, start_new_session=True)
    os.close(slave)
    out = bytearray()

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            out.extend(data)

    threading.Thread(target=drain, daemon=True).start()
    return proc, out


@pytest.mark.parametrize("model, said", [("hang.py:Net", b"did not finish within 2 s"),
                                         ("curve", b"checkpoint saved")])
def test_the_app_leaves_after_sigterm_even_when_the_step_never_ends(tmp_path, model, said):
    """The app waited for the training thread for ever (asyncio.run's executor shutdown)."""
    (tmp_path / "hang.py").write_text(HANGING_MODEL)
    proc, out = _app_in_a_terminal(tmp_path, model, "--dataset", "curve", "--epochs", "100000",
                                   "--start")
    try:
        deadline = time.monotonic() + 120
        while not ((tmp_path / "hanging").exists() if model != "curve" else any(
                b'"StepMetrics"' in p.read_bytes() for p in tmp_path.glob("runs/*/metrics.jsonl"))):
            assert proc.poll() is None and time.monotonic() < deadline, bytes(out)[-2000:]
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143, bytes(out)[-2000:]
        # The line comes after the terminal is restored: give the reader thread time to drain
        # the pseudo-terminal (a fixed 0.2 s was too short on a loaded box).
        deadline = time.monotonic() + 10
        while (said.replace(b" ", b"") not in bytes(out).replace(b" ", b"")
               and time.monotonic() < deadline):
            time.sleep(0.1)
        assert said.replace(b" ", b"") in bytes(out).replace(b" ", b""), bytes(out)[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_second_sigterm_makes_the_app_leave_at_once(tmp_path):
    (tmp_path / "hang.py").write_text(HANGING_MODEL)
    proc, out = _app_in_a_terminal(tmp_path, "hang.py:Net", "--dataset", "curve", "--epochs",
                                   "100000", "--start", grace="600")
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "hanging").exists():
            assert proc.poll() is None and time.monotonic() < deadline, bytes(out)[-2000:]
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert proc.poll() is None  # waiting for the step, within its grace period
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 143, bytes(out)[-2000:]
        time.sleep(0.2)
        assert b"a second SIGTERM" in bytes(out), bytes(out)[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
