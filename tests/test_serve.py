"""`tui-nn serve`: the app through textual-serve, driven by a websocket client and by a real
headless Chromium (skipped only when Chromium is not installed). Everything talks to
127.0.0.1 only, with bounded waits."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import fastproc
import pytest
from typer.testing import CliRunner

from tui_nn.cli import app as cli_app
from tui_nn.commands.serve_cmd import app_command, is_loopback

aiohttp = pytest.importorskip("aiohttp")
pytest.importorskip("textual_serve")

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[\]P_^][^\x07\x1b]*(\x07|\x1b\\)?")
# Names the app's model list shows on its first screen.
MODELS_SHOWN = ("lenet", "resnet", "inception")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


class Served:
    """A `tui-nn serve` process; its output is read as it comes (the URL, then request logs)."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "tui_nn", "serve", "--port",
                                      str(self.port), *args], cwd=tmp_path, env=_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_for_url()
        self.token = self.url.rsplit("token=", 1)[1]
        self.cookie = {"Cookie": f"tui_nn_serve_{self.port}={self.token}"}

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            for line in list(self.lines):
                if match := re.search(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+", line):
                    return match.group(0)
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"serve printed no URL within 30 s: {''.join(self.lines)!r}")

    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def served(tmp_path):
    server = Served(tmp_path)
    yield server
    server.stop()


def screen_text(chunks: list[bytes]) -> str:
    return ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")).lower()


async def read_app(port: int, headers: dict, seconds: float = 60,
                   until: str | None = None) -> tuple[int, str]:
    """Connect to /ws as the page does; (HTTP status, the app's output once it shows the
    model list, or `until`, or the time is up)."""
    wanted = (until.lower(),) if until else MODELS_SHOWN
    chunks: list[bytes] = []
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(f"http://127.0.0.1:{port}/ws?width=120&height=40",
                                          headers=headers)
        except aiohttp.WSServerHandshakeError as e:
            return e.status, ""
        deadline = time.monotonic() + seconds
        async with ws:
            while time.monotonic() < deadline:
                try:
                    msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if msg.type == aiohttp.WSMsgType.BINARY:
                    chunks.append(msg.data)
                    text = screen_text(chunks)
                    if all(name in text for name in wanted):
                        break
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                  aiohttp.WSMsgType.ERROR):
                    break
    return 101, screen_text(chunks)


def test_the_command_runs_this_python_and_quotes_every_arg():
    args = ["watch", "runs/a b; touch pwned", "--root", "$(id)"]
    assert shlex.split(app_command(args)) == [sys.executable, "-m", "tui_nn", *args]


def test_loopback_hosts():
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.0.2.1", "gpu-box"]))


def test_without_textual_serve_one_line_says_how_to_install(monkeypatch):
    for name in ("textual_serve", "textual_serve.server", "tui_nn.commands.serve_server"):
        monkeypatch.setitem(sys.modules, name, None)  # import -> ImportError
    result = CliRunner().invoke(cli_app, ["serve"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "pip install" in lines[0] and "tui-nn[serve]" in lines[0]


@pytest.mark.parametrize("args", [["--port", "0"], ["--port", "70000"], ["--host", " "]])
def test_bad_address_is_one_line_exit_2(args):
    result = CliRunner().invoke(cli_app, ["serve", *args])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("error: ")


@pytest.mark.parametrize("args", [["--", "train", "cnn"], ["--", "runs"], ["--", "--help"]])
def test_a_command_that_does_not_open_the_app_is_refused(args):
    result = CliRunner().invoke(cli_app, ["serve", *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "-- watch [RUN]" in lines[0] and args[1] in lines[0]


@pytest.mark.parametrize("args", [["watch", "nosuch"], ["watch"], ["watch", "--root", "x"]])
def test_serving_watch_of_no_run_is_one_line_exit_2(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)  # no runs/ here
    result = CliRunner().invoke(cli_app, ["serve", "--", *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_serving_watch_quotes_a_hostile_run_name(tmp_path):
    name = "a b; touch pwned"
    trained = fastproc.run(["train", "linear", "--epochs", "1", "--headless", "--run-dir",
                            f"runs/{name}"], cwd=tmp_path, env=_env(), capture_output=True,
                           text=True, timeout=120)
    assert trained.returncode == 0, trained.stderr
    server = Served(tmp_path, "--", "watch", name)
    try:
        headers = {"Origin": f"http://127.0.0.1:{server.port}", **server.cookie}
        status, text = asyncio.run(read_app(server.port, headers, seconds=30, until=name))
        assert status == 101 and name in text, text[-2000:]
        assert not (tmp_path / "pwned").exists()
    finally:
        server.stop()


def test_a_port_in_use_is_one_line_exit_1(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "tui_nn", "serve", "--port", str(port)],
                              cwd=tmp_path, env=_env(), capture_output=True, text=True,
                              timeout=60, check=False)
    assert done.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_non_loopback_host_warns_in_one_line(tmp_path):
    # 192.0.2.1 (TEST-NET-1) is not an address of this machine: the bind fails, so nothing
    # is exposed, but the warning comes first.
    done = subprocess.run([sys.executable, "-m", "tui_nn", "serve", "--host", "192.0.2.1",
                           "--port", str(free_port())], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=60, check=False)
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "192.0.2.1" in warnings[0] and "anyone" in warnings[0]
    assert done.returncode == 1 and "cannot serve on 192.0.2.1" in done.stderr


async def get(port: int, path: str, headers: dict) -> tuple[int, str, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}{path}", headers=headers,
                               allow_redirects=False) as r:
            return r.status, await r.text(), dict(r.headers)


def test_the_page_needs_the_printed_token(served):
    port = served.port
    assert asyncio.run(get(port, "/", {}))[0] == 403
    assert asyncio.run(get(port, "/?token=wrong", {}))[0] == 403
    assert asyncio.run(get(port, "/", {"Cookie": f"tui_nn_serve_{port}=wrong"}))[0] == 403
    status, _, headers = asyncio.run(get(port, f"/?token={served.token}", {}))
    # The token becomes an HttpOnly cookie and leaves the address bar.
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"tui_nn_serve_{port}={served.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert asyncio.run(get(port, "/", served.cookie))[0] == 200


def test_the_page_points_back_to_the_address_the_browser_used(served):
    port = served.port
    status, page, _ = asyncio.run(get(port, "/", {"Host": "localhost:9000", **served.cookie}))
    assert status == 200  # ssh -L 9000:localhost:PORT
    assert 'data-session-websocket-url="ws://localhost:9000/ws"' in page
    status, _, _ = asyncio.run(get(port, "/", {"Host": f"rebound.example:{port}",
                                               **served.cookie}))
    assert status == 403  # DNS rebinding


def test_the_websocket_runs_the_app_only_for_the_page(served):
    port = served.port
    origin = {"Origin": f"http://127.0.0.1:{port}"}
    status, text = asyncio.run(read_app(port, {**origin, **served.cookie}))
    assert status == 101
    assert all(name in text for name in MODELS_SHOWN), text[-2000:]
    refused = [origin,  # another user of the box: no cookie
               {"Origin": "http://evil.example", **served.cookie},
               {"Origin": f"http://localhost:{port + 1}", **served.cookie},
               served.cookie]
    for headers in refused:
        assert asyncio.run(read_app(port, headers, seconds=5)) == (403, "")
    assert "Traceback" not in served.output()


def _raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        return s.recv(200)


def test_the_log_is_one_inert_line_per_record_without_the_token(served):
    """Issue 26.10: the token was printed in the access log, a 20 kB header made a 40-line
    traceback with the values of its locals, a User-Agent's escapes and U+202E reached the
    terminal, and /static/ listed its folder."""
    port, token = served.port, served.token
    assert asyncio.run(get(port, f"/?token={token}", {}))[0] == 303
    evil = "\u202eevil\x9b31m".encode()  # aiohttp refuses C0 controls in a header, not these
    _raw_request(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " + evil + b"\r\n\r\n")
    _raw_request(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
    _raw_request(port, b"GET /\x1b[2J HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status, page, _ = asyncio.run(get(port, "/static/", {}))
    assert status in (403, 404) and "<a href" not in page and "Index of" not in page
    assert asyncio.run(get(port, "/static/css/xterm.css", {}))[0] == 200  # files still served
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sum('"GET /static/' in x for x in served.lines) < 2:
        time.sleep(0.1)
    lines = served.lines[1:]  # the first line is the URL to open, token and all
    log = "".join(lines)
    assert '"GET /static/ HTTP/1.1"' in log and "token=…" in log
    assert token not in log
    assert "Traceback" not in log and "locals" not in log and "LineTooLong" in log
    assert not set(log) & (set(map(chr, range(0, 10))) | set(map(chr, range(11, 32)))
                           | {"\u202e", "\x9b"})
    assert "\\u202eevil\\x9b31m" in log  # shown as escapes


def _children(proc: subprocess.Popen) -> list[psutil.Process]:
    return psutil.Process(proc.pid).children(recursive=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_server_and_its_apps(tmp_path, sig):
    server = Served(tmp_path)
    proc, port = server.proc, server.port
    try:
        async def connect_then_signal() -> list[psutil.Process]:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"http://127.0.0.1:{port}/ws", headers={
                        "Origin": f"http://127.0.0.1:{port}", **server.cookie}) as ws:
                    deadline = time.monotonic() + 30
                    while not (apps := _children(proc)) and time.monotonic() < deadline:
                        await asyncio.sleep(0.1)
                    proc.send_signal(sig)
                    # Read on, as a browser does, so the server's close is answered; it
                    # closes the page at once rather than after aiohttp's 60 s grace.
                    exited = asyncio.get_running_loop().run_in_executor(None, proc.wait, 10)
                    async for _ in ws:
                        pass
                    await exited
                    return apps

        apps = asyncio.run(connect_then_signal())
        assert apps, "the app process never started"
        assert proc.returncode == 0
        _, alive = psutil.wait_procs(apps, timeout=15)
        assert not alive, f"app processes left running: {alive}"
        assert "Traceback" not in server.output()
    finally:
        server.stop()


class DevTools:
    """The few Chrome DevTools Protocol calls the browser test needs."""

    def __init__(self, ws):
        self.ws, self.next_id, self.events = ws, 0, []

    async def call(self, method: str, **params) -> dict:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            msg = json.loads((await self.ws.receive(timeout=60)).data)
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg["result"]
            self.events.append(msg)

    async def pump(self, seconds: float) -> None:
        try:
            msg = await self.ws.receive(timeout=seconds)
            self.events.append(json.loads(msg.data))
        except asyncio.TimeoutError:
            pass

    def frames_text(self) -> str:
        chunks = [base64.b64decode(e["params"]["response"]["payloadData"])
                  for e in self.events if e.get("method") == "Network.webSocketFrameReceived"
                  and e["params"]["response"]["opcode"] == 2]
        return screen_text(chunks)


def start_chromium(profile: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                             "--no-first-run", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync",
                             "--disable-dev-shm-usage",  # small /dev/shm in containers
                             f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1",
                             "--remote-debugging-port=0", "--window-size=1280,800",
                             "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if active.exists() and len(active.read_text().split()) == 2:
            return proc, active.read_text().split()[0]
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("chromium did not open its DevTools port within 30 s")


async def browse(devtools_port: str, url: str, shot: Path) -> tuple[str, bool]:
    """Open url in a new tab; (the terminal output the page received, whether the page
    shows it), after saving a screenshot of the page once the model list is there."""
    async with aiohttp.ClientSession() as session:
        async with session.put(f"http://127.0.0.1:{devtools_port}/json/new?about:blank") as r:
            target = await r.json(content_type=None)
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            tools = DevTools(ws)
            await tools.call("Network.enable")
            await tools.call("Page.navigate", url=url)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not all(
                    name in tools.frames_text() for name in MODELS_SHOWN):
                await tools.pump(0.5)
            await asyncio.sleep(1.5)  # let xterm.js paint the last frames
            shown = await tools.call("Runtime.evaluate", expression=(
                "document.body.classList.contains('-first-byte')"))
            png = await tools.call("Page.captureScreenshot", format="png")
            shot.write_bytes(base64.b64decode(png["data"]))
            return tools.frames_text(), shown["result"]["value"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_headless_chromium_shows_the_model_list(served, tmp_path):
    browser, devtools_port = start_chromium(tmp_path / "chromium-profile")
    shot = Path(os.environ.get("TUI_NN_SERVE_SCREENSHOT") or tmp_path / "serve.png")
    try:
        apps_before = len(_children(served.proc))
        text, shown = asyncio.run(browse(devtools_port, served.url, shot))
        assert all(name in text for name in MODELS_SHOWN), text[-2000:]
        assert shown, "the page never hid its intro for the terminal"
        assert len(_children(served.proc)) > apps_before  # the page started an app process
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    finally:
        browser.terminate()
        try:
            browser.wait(15)
        except subprocess.TimeoutExpired:
            browser.kill()
