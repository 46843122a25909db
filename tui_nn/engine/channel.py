"""The control channel of a live run: a Unix domain socket in the run directory
(`control.sock`, mode 0600: only the run's owner can steer it), served by the process that
trains, gone with it. Torch-free and UI-free.

Protocol: one JSON line per connection, `{"action": "pause"|"resume"|"checkpoint"|"stop"|"lr",
"factor": 0.5}`, answered with one JSON line `{"ok": true, "state": ...}` once the run has
taken the request (the training thread applies it at the next step boundary and records it in
metrics.jsonl as the app's own keys would: StateChanged, CheckpointSaved "requested",
LrScaled, Finished "stopped"). A run that cannot act on a request (a tui_nn.Run loop that
never polls it) answers `{"ok": false, "refused": true, "error": why}`; `{"action": "honours"}`
asks which actions it takes now. No network port is opened.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import socket
import threading
from pathlib import Path
from typing import Any

from tui_nn.engine.controls import ACTIONS

SOCKET_FILE = "control.sock"
QUERY = "honours"  # asks which ACTIONS the run acts on now (watch shows only those keys)
_MAX_REQUEST = 4096
_SUN_PATH_MAX = 100  # sockaddr_un holds 108 bytes on Linux, 104 on macOS


class ChannelError(Exception):
    """The run cannot be reached; the message says why in words."""


@contextlib.contextmanager
def _short_path(path: Path):
    """A path to the socket that fits in sockaddr_un: long run directories are reached
    through /proc/self/fd/N (Linux), the directory held open meanwhile."""
    if len(os.fsencode(str(path))) <= _SUN_PATH_MAX or not Path("/proc/self/fd").is_dir():
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


class ControlServer:
    """Serves the channel of one run from a daemon thread; `controls` is the Trainer (pause,
    resume, stop, request_checkpoint, scale_lr, paused)."""

    def __init__(self, run_dir: str | Path, controls: Any) -> None:
        self.path = Path(run_dir) / SOCKET_FILE
        self.controls = controls
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    def start(self) -> "ControlServer":
        remove_stale_socket(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket file is created 0600, never wider
        try:
            with _short_path(self.path) as where:
                sock.bind(where)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        sock.listen(8)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="tui-nn-control", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        _wake(self.path)  # accept() returns at once instead of at its next timeout
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with contextlib.suppress(OSError):
            self.path.unlink()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                if self._closing.is_set():
                    return  # close()'s wake-up call
                conn.settimeout(2.0)
                try:
                    reply = self.handle(_read_line(conn))
                except (OSError, ValueError) as e:
                    reply = {"ok": False, "error": f"bad request: {e}"}
                with contextlib.suppress(OSError):
                    conn.sendall((json.dumps(reply) + "\n").encode())

    def handle(self, raw: bytes) -> dict[str, Any]:
        """Apply one request; never raises for bad input."""
        try:
            request = json.loads(raw)
        except (ValueError, RecursionError):
            return {"ok": False, "error": "not a JSON request"}
        if isinstance(request, dict) and request.get("action") == QUERY:
            return {"ok": True, "action": QUERY, "honours": honoured(self.controls)}
        if not isinstance(request, dict) or request.get("action") not in ACTIONS:
            return {"ok": False, "error": f"unknown action; one of {', '.join(ACTIONS)}"}
        action, c = request["action"], self.controls
        why = c.refusal(action) if hasattr(c, "refusal") else None
        if why:  # the run could not act on it: not "taken" (tui-nn control exits 1)
            return {"ok": False, "error": why, "refused": True}
        if action == "lr":
            factor = request.get("factor")
            if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
                return {"ok": False, "error": "lr needs a FACTOR > 0, e.g. lr 0.5"}
            c.scale_lr(float(factor))
        else:
            {"pause": c.pause, "resume": c.resume, "checkpoint": c.request_checkpoint,
             "stop": c.stop}[action]()
        return {"ok": True, "action": action,
                "state": "stopping" if action == "stop" else
                         "paused" if c.paused else "running"}


def _wake(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(0.2)
    try:
        with _short_path(path) as where:
            sock.connect(where)
    except OSError:
        pass
    finally:
        sock.close()


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < _MAX_REQUEST:
        chunk = conn.recv(1024)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0]


def remove_stale_socket(path: str | Path) -> bool:
    """Remove a control.sock that nobody listens on (left by a killed run). True if removed."""
    p = Path(path)
    if not p.is_socket():
        return False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with _short_path(p) as where:
            sock.connect(where)
    except ConnectionRefusedError:
        with contextlib.suppress(OSError):
            p.unlink()
        return True
    except OSError:
        return False
    finally:
        sock.close()
    return False


def send(run_dir: str | Path, action: str, factor: float | None = None,
         timeout: float = 5.0) -> dict[str, Any]:
    """Send one request to a live run; ChannelError when nobody answers (with the reason)."""
    path = Path(run_dir) / SOCKET_FILE
    if not path.exists():
        raise ChannelError("no control channel (the run is not training)")
    if not os.access(path, os.R_OK | os.W_OK):
        raise ChannelError(f"{path} belongs to another user: only the run's owner can steer it")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with _short_path(path) as where:
            sock.connect(where)
        request = {"action": action} | ({"factor": factor} if factor is not None else {})
        sock.sendall((json.dumps(request) + "\n").encode())
        reply = _read_line(sock)
    except ConnectionRefusedError:
        remove_stale_socket(path)
        raise ChannelError("the run's process is gone (a stale channel was removed)") from None
    except PermissionError:
        raise ChannelError(f"{path} belongs to another user: only the run's owner can steer "
                           "it") from None
    except socket.timeout:
        raise ChannelError(f"the run did not answer within {timeout:.0f} s") from None
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ECONNREFUSED):
            raise ChannelError("the run's process is gone") from None
        raise ChannelError(f"cannot reach the run: {e.strerror or e}") from None
    finally:
        sock.close()
    try:
        answer = json.loads(reply)
    except (ValueError, RecursionError):
        raise ChannelError("the run sent an unreadable answer") from None
    return answer if isinstance(answer, dict) else {"ok": False, "error": "bad answer"}


def honoured(controls: Any) -> list[str]:
    """The ACTIONS that controls would take now."""
    refusal = getattr(controls, "refusal", None)
    return [a for a in ACTIONS if refusal is None or not refusal(a)]


def query_honours(run_dir: str | Path, timeout: float = 1.0) -> tuple[str, ...] | None:
    """The actions a live run takes now; None when it cannot be asked. A run of an older
    tui-nn (which does not know the question) took every action."""
    try:
        answer = send(run_dir, QUERY, timeout=timeout)
    except ChannelError:
        return None
    found = answer.get("honours")
    if isinstance(found, list):
        return tuple(a for a in ACTIONS if a in found)
    return ACTIONS


def is_steerable(run_dir: str | Path) -> tuple[bool, str]:
    """(can this user steer the run now?, why not) for viewers that offer the keys."""
    path = Path(run_dir) / SOCKET_FILE
    if not path.is_socket():
        return False, "the run has no control channel (not training, or an older tui-nn)"
    if not os.access(path, os.R_OK | os.W_OK):
        return False, "read-only: the run belongs to another user"
    return True, ""
