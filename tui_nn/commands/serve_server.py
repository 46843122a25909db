"""textual-serve's Server, kept to the browser of the user who started it (imported only by
`tui-nn serve`: it needs the `serve` extra).

127.0.0.1 is not private on a shared GPU box: every user of the box can connect to it. And a
websocket has no same-origin rule: any web page open in the user's browser could connect to
ws://localhost:8000/ws, and a page whose DNS name turns into 127.0.0.1 (DNS rebinding) could
read the app. So, as Jupyter does, the server prints a URL with a random token; opening it sets
an HttpOnly cookie, and the page and its websocket are served only with that cookie, to a Host
naming this machine (or the --host given), the websocket only to a page of the same origin.

Its log is for the terminal of the user who started it, and every request line in it comes from
whoever connected: each record is one line (an error as its type and message, never a
traceback with the values of its locals), the token is blanked out and control characters are
shown as escapes. /static/ serves textual-serve's files, never a listing of its folder."""

from __future__ import annotations

import asyncio
import html
import logging
import re
import secrets
import sys

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.server import Server

from tui_nn.textsafe import clean_line

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
# host, host:port, [v6]:port; nothing that could break out of the page's attributes.
_HOST_HEADER = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:[0-9]{1,5})?$")
_TOKEN_PARAM = re.compile(r"(token=)[^&\s\"']*")
LOG_LINE_CHARS = 500  # a request line can be 8 kB; the log shows its start


class OneLineLog(logging.Formatter):
    """A log record as one inert line without the token (see the module docstring)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            text += f": {type(error).__name__}: {' '.join(str(error).split())}"
        text = _TOKEN_PARAM.sub(r"\1…", text).replace(self.token, "…")
        level = "" if record.levelno == logging.INFO else f"{record.levelname} "
        return clean_line(level + text, LOG_LINE_CHARS)


def host_name(host_header: str) -> str | None:
    """The name part of a Host header ('[::1]:8000' -> '::1'); None when malformed."""
    match = _HOST_HEADER.match(host_header or "")
    return match.group(1).strip("[]").lower() if match else None


def new_token() -> str:
    return secrets.token_urlsafe(24)


class LocalServer(Server):
    """Serves one `python -m tui_nn ...` command; pages link back to the address the browser
    used, so `ssh -L 9000:localhost:8000` works as well as the same port on both ends."""

    def __init__(self, command: str, *, host: str, port: int, title: str, token: str) -> None:
        # The page's template does not escape; the terminal gets control characters shown.
        super().__init__(command, host=host, port=port, title=html.escape(title))
        self.plain_title = clean_line(title)
        self.allowed_names = LOOPBACK_NAMES | {host.strip("[]").lower()}
        self.token = token
        self.cookie = f"tui_nn_serve_{port}"  # cookies are per host, not per port
        self.sessions: set[asyncio.Task] = set()

    def initialize_logging(self) -> None:
        handler = logging.StreamHandler(sys.stdout)  # where textual-serve's console wrote
        handler.setFormatter(OneLineLog(self.token))
        logging.basicConfig(level="INFO", handlers=[handler], force=True)

    async def _make_app(self) -> web.Application:
        """textual-serve's routes, with /static/ listing nothing."""
        app = web.Application()
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        app.add_routes([
            web.get("/", self.handle_index, name="index"),
            web.get("/ws", self.handle_websocket, name="websocket"),
            web.get("/download/{key}", self.handle_download, name="download"),
            web.static("/static", self.statics_path, show_index=False, name="static"),
        ])
        app.on_startup.append(self.on_startup)
        app.on_shutdown.append(self.on_shutdown)
        return app

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?token={self.token}"

    def host_allowed(self, host_header: str) -> bool:
        name = host_name(host_header)
        return name is not None and (self.host in WILDCARDS or name in self.allowed_names)

    def origin_allowed(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin", "")
        return origin in (f"http://{request.host}", f"https://{request.host}")

    def _holds(self, value: str | None) -> bool:
        return value is not None and secrets.compare_digest(value.encode(), self.token.encode())

    async def on_startup(self, app: web.Application) -> None:
        # aiohttp calls this before it binds the port: the URL is printed once the port
        # answers, so whoever opens it at once (a script, a quick user) is not refused.
        self.announcer = asyncio.get_running_loop().create_task(self._announce_when_listening())

    async def _announce_when_listening(self) -> None:
        host = "127.0.0.1" if self.host in WILDCARDS or self.host == "localhost" else self.host
        for _ in range(500):  # 10 s: the bind itself takes milliseconds
            try:
                _, writer = await asyncio.open_connection(host, self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            break
        print(f"tui-nn serve: `{self.plain_title}` at {self.url()}", flush=True)
        print(f"(on your machine: ssh -L {self.port}:localhost:{self.port} THIS-HOST, then open "
              "that URL; Ctrl-C stops the server and its apps)", flush=True)

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        if not self.host_allowed(request.host):
            raise web.HTTPForbidden(text="tui-nn serve: unknown Host\n")
        if self._holds(request.query.get("token")):
            # Trade the token for a cookie, and take it out of the address bar and history.
            response = web.HTTPSeeOther("/")
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict",
                                path="/")
            raise response
        if not self._holds(request.cookies.get(self.cookie)):
            raise web.HTTPForbidden(text="tui-nn serve: open the URL that `tui-nn serve` "
                                         "printed (it ends with ?token=...)\n")
        # The parent builds its URLs from public_url without awaiting in between, so setting
        # it per request cannot leak into another request's page.
        self.public_url = f"http://{request.host}"
        return await super().handle_index(request)

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
        if not (self.host_allowed(request.host) and self.origin_allowed(request)
                and self._holds(request.cookies.get(self.cookie))):
            raise web.HTTPForbidden(text="tui-nn serve: websocket refused\n")
        session = asyncio.current_task()
        self.sessions.add(session)
        try:
            return await super().handle_websocket(request)
        finally:
            self.sessions.discard(session)

    async def on_shutdown(self, app: web.Application) -> None:
        # aiohttp would wait up to a minute for open websockets to end; cancelling a session
        # closes its socket and sends its app `quit` (textual-serve's own cleanup) at once.
        for session in list(self.sessions):
            session.cancel()
