"""One reused OpenSSH connection per host, for reading runs on other machines.

The user's own `ssh` does the work (its config, keys, agent, jump hosts), with BatchMode=yes so
nothing ever waits on a prompt. The first command to a host starts a ControlMaster whose socket
lives in a private 0700 folder of this process; every later command rides it (no new TCP or
key exchange). The master lingers ControlPersist seconds after its last use and is told to exit
when this process ends. Remote commands are POSIX `sh` scripts fed on stdin (`sh -s`), so the
remote login shell (bash, zsh, fish) never parses them and nothing needs installing there.

TUI_NN_SSH_CONFIG names an ssh_config to use instead of ~/.ssh/config (`ssh -F`): for tests,
and for fleets whose aliases live in a file of their own.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil

from tui_nn.textsafe import clean_line

CONNECT_TIMEOUT_S = 5  # a down or hanging host is reported after this long, never waited on
PERSIST_S = 30  # how long an idle master outlives its last command
MAX_OUTPUT = 256 << 20  # bytes one remote command may send back; more is refused
CONFIG_ENV = "TUI_NN_SSH_CONFIG"
# What an OpenSSH destination may hold; anything else (a leading "-" above all: an option)
# is refused before ssh sees it.
_HOST_RE = re.compile(r"^[A-Za-z0-9_.%+@\[\]:-]{1,255}$")


class SshError(RuntimeError):
    """A host that could not be reached or a remote command that failed; str() is one line
    fit to show (ssh's own reason when it gave one)."""


def valid_host(host: str) -> bool:
    return bool(_HOST_RE.match(host)) and not host.startswith("-")


class _Registry:
    """The private folder for control sockets, and the hosts with a master in it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.dir: Path | None = None
        self.hosts: dict[str, Host] = {}

    def folder(self) -> Path:
        with self.lock:
            if self.dir is None:
                # /tmp, not $TMPDIR: a socket path must fit in sockaddr_un's 104 bytes.
                _sweep_stale()
                self.dir = Path(tempfile.mkdtemp(prefix=f"tui-nn-ssh-{os.getpid()}-",
                                                 dir="/tmp"))
                os.chmod(self.dir, 0o700)
                atexit.register(self.close_all)
            return self.dir

    def host(self, name: str) -> "Host":
        with self.lock:
            if name not in self.hosts:
                self.hosts[name] = Host(name)
            return self.hosts[name]

    def close_all(self) -> None:
        for host in list(self.hosts.values()):
            host.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def _sweep_stale() -> None:
    """Remove our folders left by tui-nn processes that died without cleaning up (killed):
    they hold copies of remote run files."""
    for path in Path("/tmp").glob("tui-nn-ssh-*-*"):
        pid = path.name.split("-")[3]
        try:
            st = path.lstat()
            if (not pid.isdigit() or not stat.S_ISDIR(st.st_mode)
                    or st.st_uid != os.geteuid() or psutil.pid_exists(int(pid))):
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)


_REGISTRY = _Registry()


def host(name: str) -> "Host":
    """The shared connection to `name` (an ssh destination: alias, host or user@host)."""
    if not valid_host(name):
        # Not quoted: every caller names its target (whose host remote.split_target checked).
        raise SshError("not a host name: letters, digits and _ . % + @ [ ] : - only")
    return _REGISTRY.host(name)


def private_dir() -> Path:
    """This process's 0700 folder (control sockets, forwarded run sockets, mirrors)."""
    return _REGISTRY.folder()


class Host:
    """One destination; thread-safe (commands from several threads share the master)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._socket: Path | None = None
        self.connect_s: float | None = None  # how long the last master start took

    def base_args(self) -> list[str]:
        config = os.environ.get(CONFIG_ENV)
        return ["ssh", *(["-F", config] if config else []), "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", "-o", "ServerAliveInterval=5",
                "-o", "ServerAliveCountMax=2", "-S", str(self.socket_path())]

    def socket_path(self) -> Path:
        if self._socket is None:
            digest = hashlib.sha1(self.name.encode()).hexdigest()[:16]
            self._socket = private_dir() / f"m{digest}"
        return self._socket

    def connect(self) -> None:
        """Start the master unless one answers; SshError with ssh's reason otherwise."""
        with self._lock:
            if self._alive():
                return
            if shutil.which("ssh") is None:
                raise SshError("no ssh command here (install OpenSSH's client)")
            started = time.monotonic()
            log = private_dir() / f"{self.socket_path().name}.log"
            with log.open("wb") as err:
                try:
                    proc = subprocess.run(
                        [*self.base_args(), "-o", "ControlMaster=yes",
                         "-o", f"ControlPersist={PERSIST_S}", "-f", "-N", "--", self.name],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                        timeout=CONNECT_TIMEOUT_S * 2 + 5)
                except subprocess.TimeoutExpired:
                    raise SshError(f"no answer within {CONNECT_TIMEOUT_S * 2 + 5} s") from None
            if proc.returncode != 0:
                raise SshError(_reason(log.read_bytes(), proc.returncode))
            self.connect_s = time.monotonic() - started

    def _alive(self) -> bool:
        # A master that died since is no harm: ssh then connects on its own for that command.
        return self.connect_s is not None and self.socket_path().is_socket()

    def run(self, script: str, timeout: float = 60.0, max_output: int = MAX_OUTPUT) -> bytes:
        """Run a POSIX sh script on the host; its stdout (at most max_output bytes)."""
        self.connect()
        proc = subprocess.Popen([*self.base_args(), "-o", "ControlMaster=no", "--", self.name,
                                 "sh -s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        out = _Reader(proc.stdout, max_output)
        err = _Reader(proc.stderr, 64 << 10)
        with contextlib.suppress(OSError):
            proc.stdin.write(script.encode())
            proc.stdin.close()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise SshError(f"the command did not finish within {timeout:.0f} s") from None
        data, too_big = out.result()
        if too_big:
            raise SshError(f"the host sent more than {max_output} bytes")
        if proc.returncode != 0:
            raise SshError(_reason(err.result()[0], proc.returncode))
        return data

    def forward(self, local: Path, remote: str, cancel: bool = False) -> None:
        """Forward a local Unix socket to one on the host, through the master (OpenSSH's
        streamlocal forwarding: no port is opened anywhere)."""
        self.connect()
        proc = subprocess.run([*self.base_args(), "-O", "cancel" if cancel else "forward",
                               "-L", f"{local}:{remote}", "--", self.name],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        if proc.returncode != 0 and not cancel:
            raise SshError(_reason(proc.stderr, proc.returncode))

    def close(self) -> None:
        if self._socket is not None and self._socket.is_socket():
            subprocess.run([*self.base_args(), "-O", "exit", "--", self.name],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10)


class _Reader:
    """Drains a pipe in a thread (so a chatty stderr never blocks stdout), keeping a bound."""

    def __init__(self, pipe, limit: int) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self.thread.start()

    def _drain(self, pipe) -> None:
        while chunk := pipe.read(1 << 16):
            if self.size <= self.limit:
                self.chunks.append(chunk)
            self.size += len(chunk)
        pipe.close()

    def result(self) -> tuple[bytes, bool]:
        self.thread.join(timeout=10)
        return b"".join(self.chunks)[:self.limit], self.size > self.limit


def _reason(stderr: bytes, code: int) -> str:
    """ssh's last words (one cleaned line), or the exit code."""
    lines = [ln for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    text = lines[-1] if lines else f"ssh exited with {code}"
    return clean_line(text.removeprefix("ssh: "), 160)
