"""`python -m tui_nn ...` as a real child process that skips the second of interpreter and
torch start-up: a zygote process imports torch and the CLI once, then forks one child per
request, which becomes `python -m tui_nn ARGS` (argv, environment, working directory and
stdin/stdout/stderr as asked) and runs the module as the interpreter would, exit and atexit
included. The child is a separate process with its own pid: signals, SIGKILL, locks and
sockets behave as for a fresh interpreter.

Use it only where what a test checks happens after start-up: what a fresh interpreter imports
or prints while importing (dynamo, CUDA_HOME warnings, import-time env such as OMP_NUM_THREADS
set differently from the zygote's) needs a plain subprocess. `run()` mirrors subprocess.run,
`popen()` a subprocess.Popen with pipes.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

PIPE, DEVNULL, STDOUT = subprocess.PIPE, subprocess.DEVNULL, subprocess.STDOUT
_HEADER = struct.Struct("!I")
# What `train --headless` imports on its way (torch._dynamo through the optimizer's first
# construction, tensorboard through the run's writer, typer's adapters through the options):
# loaded once here, the CLI first as in a real start. A child then starts in well under a second.
_PRELOAD = ("tui_nn.cli", "tui_nn.commands.train_cmd", "tui_nn.engine.trainer", "tui_nn.zoo",
            "tui_nn.data", "tui_nn.shapes", "tui_nn.engine.tensorboard", "torch._dynamo",
            "torch.utils.tensorboard", "typer._adapters", "psutil")


# ---------------------------------------------------------------- the zygote (server side)

def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _serve(path: str) -> tuple[dict, list[int]]:
    """Answer requests until one is forked: returns (request, fds) in that child only."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    print("ready", flush=True)
    while True:
        for key, _ in sel.select(timeout=0.02):
            conn, _ = listener.accept()
            msg, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
            request = json.loads(_recv_exact(conn, _HEADER.unpack(msg)[0]))
            pid = os.fork()
            if pid == 0:
                sel.close()
                listener.close()
                conn.close()
                return request, fds
            for fd in fds:
                os.close(fd)
            conn.sendall(f"pid {pid}\n".encode())
            children[pid] = conn
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = children.pop(pid)
            try:
                conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
            except OSError:
                pass  # the test is gone
            conn.close()


def _become(request: dict, fds: list[int]) -> None:
    """Turn this fork into `python -m tui_nn ARGS` as a fresh interpreter would start it."""
    if request["new_session"]:
        os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in set(fds):
        if fd > 2:
            os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # As the interpreter opens them: stdout block-buffered on a pipe (unbuffered under
    # PYTHONUNBUFFERED, line-buffered on a terminal), stderr line-buffered.
    sys.stdin = sys.__stdin__ = open(0, closefd=False)  # noqa: SIM115
    if os.environ.get("PYTHONUNBUFFERED"):
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
    else:
        sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, errors="backslashreplace", closefd=False)  # noqa: SIM115
    sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr
    sys.path[0] = os.getcwd()
    sys.argv = ["-m", *request["args"]]


def _zygote_main(path: str) -> None:
    import gc
    import importlib

    for name in _PRELOAD:
        importlib.import_module(name)
    gc.freeze()  # the children's collections leave the shared heap alone (no copy-on-write)
    request, fds = _serve(path)
    _become(request, fds)
    _run_as_main()


def _run_as_main() -> None:
    """`python -m tui_nn`, then the interpreter's exit steps in its order (threads joined,
    atexit, stdio flushed) and os._exit: tearing down torch's thousands of modules in a forked
    child touches every shared page, seconds of copy-on-write for nothing a test reads. An
    exception other than SystemExit takes the interpreter's own way out."""
    import runpy
    import threading

    try:
        runpy.run_module("tui_nn", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code
    threading._shutdown()
    atexit._run_exitfuncs()
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # closed or broken, as the interpreter would ignore
    os._exit(code & 0xFF)


# ---------------------------------------------------------------- the test side

class Proc:
    """The parts of subprocess.Popen the tests use, for a child of the zygote."""

    def __init__(self, args: list[str], conn: socket.socket, pid: int, stdin, stdout, stderr):
        self.args, self.pid, self._conn = args, pid, conn
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode: int | None = None
        self._buf = b""

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read_status(0)
        return self.returncode

    def _read_status(self, timeout: float | None) -> None:
        self._conn.settimeout(timeout)
        try:
            while b"\n" not in self._buf:
                chunk = self._conn.recv(64)
                if not chunk:
                    raise RuntimeError("the zygote went away")
                self._buf += chunk
        except (BlockingIOError, TimeoutError, socket.timeout):
            return
        self.returncode = int(self._buf.split()[1])
        self._conn.close()

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._read_status(timeout)
            if self.returncode is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def communicate(self, input=None, timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.stdin:
            if input:
                self.stdin.write(input)
            self.stdin.close()
        out = _read_all([self.stdout, self.stderr], deadline, self.args, timeout)
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return tuple(_decoded(f, data) for f, data in zip((self.stdout, self.stderr), out))

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        for f in (self.stdin, self.stdout, self.stderr):
            if f:
                f.close()
        self.wait()


def _decoded(f, data: bytes | None):
    if f is None or data is None:
        return None
    # Text as Popen(text=True) reads it: universal newlines.
    return data.decode().replace("\r\n", "\n").replace("\r", "\n") if hasattr(f, "encoding") \
        else data


def _read_all(files, deadline, args, timeout) -> list[bytes | None]:
    sel = selectors.DefaultSelector()
    out: dict[int, list[bytes]] = {}
    for f in files:
        if f is not None and not f.closed:
            sel.register(f.fileno(), selectors.EVENT_READ)
            out[f.fileno()] = []
    while sel.get_map():
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise subprocess.TimeoutExpired(args, timeout)
        for key, _ in sel.select(left):
            chunk = os.read(key.fd, 65536)
            if chunk:
                out[key.fd].append(chunk)
            else:
                sel.unregister(key.fd)
    return [None if f is None or f.closed else b"".join(out[f.fileno()]) for f in files]


class _Zygote:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="tui-nn-zygote-")
        self.path = os.path.join(self.dir, "sock")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, self.path], stdin=DEVNULL, stdout=PIPE,
            stderr=None, cwd=self.dir)
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"the zygote did not start: {line!r}")
        atexit.register(self.close)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def spawn(self, args, stdin, stdout, stderr, env, cwd, text, new_session) -> Proc:
        ours, theirs = [], []
        for spec, default, mode in ((stdin, 0, "w"), (stdout, 1, "r"), (stderr, 2, "r")):
            if spec == PIPE:
                r, w = os.pipe()
                mine, child = (w, r) if mode == "w" else (r, w)
                theirs.append(child)
                ours.append(open(mine, mode + ("" if text else "b"), buffering=-1 if text
                                 or mode == "w" else 0))
            elif spec == STDOUT:
                theirs.append(theirs[1])
                ours.append(None)
            elif spec == DEVNULL:
                theirs.append(os.open(os.devnull, os.O_RDWR))
                ours.append(None)
            else:  # inherited: ours, a file's or a raw descriptor
                fd = default if spec is None else spec if isinstance(spec, int) else spec.fileno()
                theirs.append(os.dup(fd))
                ours.append(None)
        request = json.dumps({"args": [str(a) for a in args], "cwd": str(cwd or os.getcwd()),
                              "env": dict(os.environ if env is None else env),
                              "new_session": new_session}).encode()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(self.path)
        socket.send_fds(conn, [_HEADER.pack(len(request))], theirs)
        conn.sendall(request)
        for fd in set(theirs):
            os.close(fd)
        reply = b""
        while not reply.endswith(b"\n"):
            reply += conn.recv(1)
        return Proc(list(args), conn, int(reply.split()[1]), *ours)


_ZYGOTE: _Zygote | None = None


def _zygote() -> _Zygote:
    global _ZYGOTE
    if _ZYGOTE is None:
        _ZYGOTE = _Zygote()
    return _ZYGOTE


def popen(args, *, stdin=None, stdout=None, stderr=None, env=None, cwd=None, text=False,
          start_new_session=False) -> Proc:
    """subprocess.Popen([sys.executable, "-m", "tui_nn", *args], ...) from the zygote."""
    return _zygote().spawn(args, stdin, stdout, stderr, env, cwd, text, start_new_session)


def run(args, *, input=None, capture_output=False, timeout=None, env=None, cwd=None,
        text=False, stdout=None, stderr=None, check=False) -> subprocess.CompletedProcess:
    """subprocess.run([sys.executable, "-m", "tui_nn", *args], ...) from the zygote."""
    if capture_output:
        stdout = stderr = PIPE
    proc = popen(args, stdin=PIPE if input is not None else DEVNULL, stdout=stdout,
                 stderr=stderr, env=env, cwd=cwd, text=text)
    try:
        out, err = proc.communicate(input, timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check:
        result.check_returncode()
    return result


if __name__ == "__main__":
    _zygote_main(sys.argv[1])
