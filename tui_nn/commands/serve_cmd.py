"""`tui-nn serve`: the app (or another `tui-nn` command that opens it, e.g. `watch RUN`) in a
browser through textual-serve, on localhost, for `ssh -L 8000:localhost:8000 gpu-box`.

Each browser tab gets its own `python -m tui_nn ARGS` process, run with this Python; only
the printed URL (with its random token) opens the page (see serve_server). Exit
codes: 0 after Ctrl-C/SIGTERM, 1 when the address cannot be served, 2 on usage errors and
when textual-serve is not installed."""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import sys

from tui_nn.textsafe import error, say

EXIT_OK, EXIT_CANNOT_SERVE, EXIT_USAGE = 0, 1, 2
APP_COMMANDS = ("tui", "watch")
INSTALL_HINT = ("tui-nn serve needs textual-serve: pip install 'tui-nn[serve]' "
                "(or pip install textual-serve)")


def app_command(args: list[str]) -> str:
    """The shell command textual-serve runs per browser tab: this interpreter, each ARG
    quoted, so a run name with spaces or `;` stays one argument."""
    return shlex.join([sys.executable, "-m", "tui_nn", *args])


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_address(host: str, port: int) -> str | None:
    """A usage error about host/port, or None."""
    if not 1 <= port <= 65535:
        return f"--port must be 1..65535 (got {port})"
    if not host.strip():
        return "--host must not be empty (the default is 127.0.0.1)"
    try:  # the server's resolver raises UnicodeError (not OSError) for these
        named = host.isprintable() and bool(host.encode("idna"))
    except UnicodeError:
        named = False
    return None if named else f"--host must be a host name or an address (got {host})"


def check_args(args: list[str]) -> str | None:
    """A usage error when ARGS is not a command that opens the app: anything else (`train`
    without a terminal trains headless, `runs` prints a table) would leave a blank page."""
    if not args or args[0] in APP_COMMANDS:
        return None
    return (f"serve runs a command that opens the app: `tui-nn serve`, `-- tui [MODEL ...]` "
            f"or `-- watch [RUN]` (to train in the browser: `-- tui MODEL --start`); "
            f"got `{shlex.join(args)}`")  # inert where printed (textsafe.error)


def check_watched_run(args: list[str]) -> str | None:
    """For `watch [RUN] [--root R]`: the run must exist now, or every tab would open on a
    blank page (the app's error goes to the server's terminal, not the browser)."""
    if not args or args[0] != "watch":
        return None
    from tui_nn.runs import DEFAULT_ROOT, RunNotFound, resolve_run
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("run", nargs="?")
    parser.add_argument("--root")
    try:
        known, _ = parser.parse_known_args(args[1:])
        resolve_run(known.run or "latest", known.root or DEFAULT_ROOT)
    except argparse.ArgumentError:
        return None  # `watch` itself will say what is wrong with its options
    except RunNotFound as e:
        return str(e)
    return None


def run_serve(host: str, port: int, args: list[str]) -> int:
    problem = check_address(host, port) or check_args(args) or check_watched_run(args)
    if problem:
        error(problem)  # its quotes of what was typed (a run's name, ARGS) made inert there
        return EXIT_USAGE
    try:
        from tui_nn.commands.serve_server import LocalServer, new_token
    except ImportError:
        error(INSTALL_HINT)
        return EXIT_USAGE
    if not is_loopback(host):
        say(f"warning: serving on {host}, beyond this machine: anyone who reaches port "
            f"{port} with the printed URL drives the app as you (plain http: the network "
            "can read the token)", sys.stderr)
    server = LocalServer(app_command(args), host=host, port=port,
                         title=shlex.join(["tui-nn", *args]), token=new_token())
    try:
        server.serve()
    except OSError as e:
        error(f"cannot serve on {host}:{port}: {e.strerror or e}")
        return EXIT_CANNOT_SERVE
    return EXIT_OK
