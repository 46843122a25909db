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
import os
import socket
import socketserver
import threading
import time
from pathlib import Path
from typing import Any

from tui_nn.engine.controls import ACTIONS, LR_FACTOR_HINT, lr_factor

SOCKET_FILE = "control.sock"
QUERY = "honours"  # asks which ACTIONS the run acts on now (watch shows only those keys)
_MAX_REQUEST = 4096
CLIENT_DEADLINE_S = 3.0  # a client has this long to send its request line
MAX_CLIENTS = 128  # served at once; one more is told "busy" at once, never queued behind
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


class _Server(socketserver.ThreadingUnixStreamServer):
    """One thread per client, each with its own deadline: a client that is idle, or sends a
    byte now and then, holds only its own thread until CLIENT_DEADLINE_S, never another's."""

    daemon_threads = True  # a client still reading never holds the process at exit
    request_queue_size = 64  # connections the kernel holds while threads start

    def __init__(self, owner: "ControlServer") -> None:
        super().__init__(str(owner.path), _Handler, bind_and_activate=False)
        self.owner = owner
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)

    def handle_error(self, request, client_address) -> None:  # noqa: ARG002
        pass  # a client's failure is its own: no traceback on the run's stderr


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        conn: socket.socket = self.request
        if not server.slots.acquire(blocking=False):
            reply = {"ok": False, "error": f"busy: {MAX_CLIENTS} clients at once, try again"}
        else:
            try:
                reply = server.owner.answer(conn)
            finally:
                server.slots.release()
        if reply is None:
            return  # the client gave up, or was too slow: it gets nothing
        with contextlib.suppress(OSError):
            conn.settimeout(1.0)
            conn.sendall((json.dumps(reply) + "\n").encode())


class ControlServer:
    """Serves the channel of one run from daemon threads (socketserver: one per client);
    `controls` is the Trainer (pause, resume, stop, request_checkpoint, scale_lr, paused)."""

    def __init__(self, run_dir: str | Path, controls: Any) -> None:
        self.path = Path(run_dir) / SOCKET_FILE
        self.controls = controls
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "ControlServer":
        remove_stale_socket(self.path)
        server = _Server(self)
        old_umask = os.umask(0o177)  # the socket file is created 0600, never wider
        try:
            with _short_path(self.path) as where:
                server.socket.bind(where)
            os.chmod(self.path, 0o600)
            server.server_activate()
        except OSError:
            server.server_close()
            raise
        finally:
            os.umask(old_umask)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.5,),
                                        name="tui-nn-control", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        _wake(self.path)  # the select() returns now rather than at its next poll
        stopper.join(timeout=2)
        server.server_close()
        with contextlib.suppress(OSError):
            self.path.unlink()

    def answer(self, conn: socket.socket) -> dict[str, Any] | None:
        """The reply to one client; never raises (an error is this request's, not the
        channel's). None when the client sent nothing in time."""
        try:
            raw = _read_line(conn, time.monotonic() + CLIENT_DEADLINE_S)
        except socket.timeout:
            return {"ok": False, "error": f"no request within {CLIENT_DEADLINE_S:g} s"}
        except OSError:
            return None
        if not raw:
            return None
        try:
            return self.handle(raw)
        except Exception as e:  # noqa: BLE001 - the next client is still served
            return {"ok": False, "error": f"bad request ({type(e).__name__})"}

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
            factor = lr_factor(request.get("factor"))
            if factor is None:
                return {"ok": False, "error": LR_FACTOR_HINT}
            try:
                c.scale_lr(factor)
            except ValueError as e:  # the pending product left the range
                return {"ok": False, "error": str(e)}
        else:
            {"pause": c.pause, "resume": c.resume, "checkpoint": c.request_checkpoint,
             "stop": c.stop}[action]()
        return {"ok": True, "action": action,
                "state": "stopping" if action == "stop" else
                         "paused" if c.paused else "running"}


def _wake(path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock, contextlib.suppress(OSError):
        sock.settimeout(0.2)
        with _short_path(path) as where:
            sock.connect(where)


def _read_line(conn: socket.socket, deadline: float) -> bytes:
    """The first line the peer sends, read until `deadline` (time.monotonic()) at the latest:
    a per-recv timeout alone lets a client sending one byte a second hold on for ever."""
    data = b""
    while b"\n" not in data and len(data) < _MAX_REQUEST:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout
        conn.settimeout(left)
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
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            with _short_path(p) as where:
                sock.connect(where)
        except ConnectionRefusedError:
            with contextlib.suppress(OSError):
                p.unlink()
            return True
        except OSError:
            return False
    return False


def send(run_dir: str | Path, action: str, factor: float | None = None,
         timeout: float = 5.0) -> dict[str, Any]:
    """Send one request to a live run; ChannelError when nobody answers (with the reason)."""
    path = Path(run_dir) / SOCKET_FILE
    if not path.exists():
        raise ChannelError("no control channel (the run is not training)")
    not_owner = f"{path} belongs to another user: only the run's owner can steer it"
    if not os.access(path, os.R_OK | os.W_OK):
        raise ChannelError(not_owner)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            with _short_path(path) as where:
                sock.connect(where)
            request = {"action": action} | ({"factor": factor} if factor is not None else {})
            sock.sendall((json.dumps(request) + "\n").encode())
            reply = _read_line(sock, time.monotonic() + timeout)
        except ConnectionRefusedError:
            remove_stale_socket(path)
            raise ChannelError("the run's process is gone (a stale channel was removed)") from None
        except PermissionError:
            raise ChannelError(not_owner) from None
        except socket.timeout:
            raise ChannelError(f"the run did not answer within {timeout:.0f} s") from None
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ECONNREFUSED):
                raise ChannelError("the run's process is gone") from None
            raise ChannelError(f"cannot reach the run: {e.strerror or e}") from None
    try:
        answer = json.loads(reply)
    except (ValueError, RecursionError):
        raise ChannelError("the run sent an unreadable answer") from None
    return answer if isinstance(answer, dict) else {"ok": False, "error": "bad answer"}


def honoured(controls: Any) -> list[str]:
    """The ACTIONS that controls would take now."""
    refusal = getattr(controls, "refusal", None)
    return [a for a in ACTIONS if refusal is None or not refusal(a)]


def query_honours(run_dir: str | Path, timeout: float = 5.0) -> tuple[str, ...] | None:
    """The actions a live run takes now; None when it cannot be asked. A run of an older
    tui-nn (which does not know the question) took every action."""
    try:
        answer = send(run_dir, QUERY, timeout=timeout)
    except ChannelError:
        return None
    found = answer.get("honours")
    if isinstance(found, list):
        return tuple(a for a in ACTIONS if a in found)
    return ACTIONS if str(answer.get("error", "")).startswith("unknown action") else None


def is_steerable(run_dir: str | Path) -> tuple[bool, str]:
    """(can this user steer the run now?, why not) for viewers that offer the keys."""
    path = Path(run_dir) / SOCKET_FILE
    if not path.is_socket():
        return False, "the run has no control channel (not training, or an older tui-nn)"
    if not os.access(path, os.R_OK | os.W_OK):
        return False, "read-only: the run belongs to another user"
    return True, ""
