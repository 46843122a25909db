"""textual-serve's Server, kept to the browser that the user opened (imported only by
`tui-nn serve`: it needs the `serve` extra).

A websocket has no same-origin rule: any web page open in the user's browser could connect
to ws://localhost:8000/ws and drive the app, and a page whose DNS name turns into 127.0.0.1
(DNS rebinding) could read it. So the page is served only to a Host naming this machine (or
the --host given), and the websocket only to a page of the same origin."""

from __future__ import annotations

import re

from aiohttp import web
from textual_serve.server import Server

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
# host, host:port, [v6]:port; nothing that could break out of the page's attributes.
_HOST_HEADER = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:[0-9]{1,5})?$")


def host_name(host_header: str) -> str | None:
    """The name part of a Host header ('[::1]:8000' -> '::1'); None when malformed."""
    match = _HOST_HEADER.match(host_header or "")
    if match is None:
        return None
    return match.group(1).strip("[]").lower()


class LocalServer(Server):
    """Serves one `python -m tui_nn ...` command; pages link back to the address the browser
    used, so `ssh -L 9000:localhost:8000` works as well as the same port on both ends."""

    def __init__(self, command: str, *, host: str, port: int, title: str) -> None:
        super().__init__(command, host=host, port=port, title=title)
        self.allowed_names = LOOPBACK_NAMES | {host.strip("[]").lower()}

    def host_allowed(self, host_header: str) -> bool:
        name = host_name(host_header)
        if name is None:
            return False
        return self.host in WILDCARDS or name in self.allowed_names

    def origin_allowed(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin", "")
        return origin in (f"http://{request.host}", f"https://{request.host}")

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        if not self.host_allowed(request.host):
            raise web.HTTPForbidden(text="tui-nn serve: unknown Host\n")
        # The parent builds its URLs from public_url without awaiting in between, so setting
        # it per request cannot leak into another request's page.
        self.public_url = f"http://{request.host}"
        return await super().handle_index(request)

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
        if not (self.host_allowed(request.host) and self.origin_allowed(request)):
            raise web.HTTPForbidden(text="tui-nn serve: cross-origin websocket refused\n")
        return await super().handle_websocket(request)
