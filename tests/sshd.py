"""A real OpenSSH server for the remote-run tests: its own sshd on a free loopback port, with
throwaway host and user keys under tmp_path, and an ssh_config whose Host aliases the product
reaches through TUI_NN_SSH_CONFIG (as a user's ~/.ssh/config alias would be).

Aliases: `testbox` (the sshd), `downbox` (a closed port), `hangbox` (a listener that accepts
and never says a word), `nokeybox` (the sshd with a key it refuses: ssh would ask for a
password), `smibox` (the sshd, its login's PATH holding a stand-in nvidia-smi: 2 GPUs) and
`nvmlbox` (also a stand-in `tui-nn` whose Python finds a stand-in pynvml: 1 GPU at 42%).
The "remote" is this machine as the current user, so a run trained into tmp_path is also a
run on testbox."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
SSH_KEYGEN = shutil.which("ssh-keygen")
MISSING = (None if SSHD and SSH_KEYGEN and shutil.which("ssh")
           else "OpenSSH server/client not installed (apt-get install openssh-server)")


@dataclass
class SshServer:
    port: int
    config: Path  # the ssh_config to pass as TUI_NN_SSH_CONFIG / ssh -F
    proc: subprocess.Popen
    log: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "TUI_NN_SSH_CONFIG": str(self.config), "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path, kind: str = "ed25519") -> None:
    subprocess.run([SSH_KEYGEN, "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)


def start_sshd(tmp: Path, hang_port: int, aliases: tuple[str, ...] = ("testbox",)) -> SshServer:
    """sshd on a free port; `hang_port` is a listener the caller keeps silent."""
    tmp.mkdir(parents=True, exist_ok=True)
    tmp.chmod(0o700)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    _keygen(tmp / "host_key")
    _keygen(tmp / "user_key")
    keys = (tmp / "user_key.pub").read_text()
    for box, env in _gpu_logins(tmp).items():  # each its own key, whose login sets the env
        _keygen(tmp / f"{box}_key")
        keys += ",".join(f'environment="{k}={v}"' for k, v in env.items()) + " " + \
            (tmp / f"{box}_key.pub").read_text()
    (tmp / "authorized_keys").write_text(keys)
    (tmp / "authorized_keys").chmod(0o600)
    port = free_port()
    log = tmp / "sshd.log"
    (tmp / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host_key'}\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nPidFile {tmp / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\n"
        "AllowStreamLocalForwarding yes\nStreamLocalBindUnlink yes\nMaxSessions 64\n"
        "MaxStartups 64\nLogLevel ERROR\nPermitUserEnvironment PATH,PYTHONPATH\n")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(tmp / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    common = (f"  User {getpass.getuser()}\n  IdentityFile {tmp / 'user_key'}\n"
              f"  IdentitiesOnly yes\n  UserKnownHostsFile {tmp / 'known_hosts'}\n"
              "  StrictHostKeyChecking accept-new\n  BatchMode yes\n  LogLevel ERROR\n")
    hosts = "".join(f"Host {a}\n  HostName 127.0.0.1\n  Port {port}\n{common}" for a in aliases)
    closed = free_port()  # bound then released: nothing listens there
    hosts += f"Host downbox\n  HostName 127.0.0.1\n  Port {closed}\n{common}"
    hosts += f"Host hangbox\n  HostName 127.0.0.1\n  Port {hang_port}\n{common}"
    _keygen(tmp / "other_key")  # a key the server does not know: a password prompt, batched
    hosts += (f"Host nokeybox\n  HostName 127.0.0.1\n  Port {port}\n"
              + common.replace(str(tmp / "user_key"), str(tmp / "other_key")))
    for box in _gpu_logins(tmp):
        hosts += (f"Host {box}\n  HostName 127.0.0.1\n  Port {port}\n"
                  + common.replace(str(tmp / "user_key"), str(tmp / f"{box}_key")))
    (tmp / "ssh_config").write_text(hosts)
    server = SshServer(port, tmp / "ssh_config", proc, log)
    _wait_listening(server)
    return server


_SMI = "#!/bin/sh\necho '0, 87, 30000, 81559'\necho '1, 3, 512, 81559'\n"
_PYNVML = """from types import SimpleNamespace as N
NVML_TEMPERATURE_GPU = 0
def nvmlInit(): pass
def nvmlSystemGetDriverVersion(): return "555.42"
def nvmlDeviceGetCount(): return 1
def nvmlDeviceGetHandleByIndex(i): return i
def nvmlDeviceGetUUID(h): return "GPU-fake"
def nvmlDeviceGetName(h): return "Fake H100"
def nvmlDeviceGetUtilizationRates(h): return N(gpu=42, memory=0)
def nvmlDeviceGetMemoryInfo(h): return N(used=10 << 30, total=80 << 30)
"""


def _gpu_logins(tmp: Path) -> dict[str, dict[str, str]]:
    """The environment of the GPU boxes' logins, their stand-in programs written under tmp."""
    smi, nvml = tmp / "smi-bin", tmp / "nvml-bin"
    for d in (smi, nvml, tmp / "nvml-py"):
        d.mkdir(exist_ok=True)
    for d in (smi, nvml):  # nvmlbox has nvidia-smi too: NVML is asked first
        (d / "nvidia-smi").write_text(_SMI)
        (d / "nvidia-smi").chmod(0o755)
    (nvml / "tui-nn").write_text(f"#!{sys.executable}\nimport sys\n")
    (nvml / "tui-nn").chmod(0o755)
    (tmp / "nvml-py" / "pynvml.py").write_text(_PYNVML)
    here = str(Path(__file__).resolve().parent.parent)  # this checkout's tui_nn
    return {"smibox": {"PATH": f"{smi}:/usr/bin:/bin"},
            "nvmlbox": {"PATH": f"{nvml}:/usr/bin:/bin",
                        "PYTHONPATH": f"{tmp / 'nvml-py'}:{here}"}}


def _wait_listening(server: SshServer, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {server.log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sshd never listened")


class SilentListener:
    """Accepts TCP connections and never answers (a host whose sshd hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        for c in self.held:
            c.close()


def stop(server: SshServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
