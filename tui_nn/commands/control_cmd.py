"""`tui-nn control RUN ACTION`: steer a live run from the shell through its control channel.

Exit codes: 0 the run took the request, 1 the run is not training (one line: its status and
the command that resumes it) or cannot act on the request (a tui_nn.Run loop that does not
poll it: the reason), 2 a usage error."""

from __future__ import annotations

from tui_nn.textsafe import error as _err, say  # messages quote run paths: anything

from tui_nn.engine.controls import ACTIONS, LR_FACTOR_HINT, lr_factor

EXIT_OK, EXIT_NOT_RUNNING, EXIT_USAGE = 0, 1, 2


def run_control(run: str, action: str, factor: str | None, root: str | None) -> int:
    from tui_nn.engine.channel import ChannelError, send
    from tui_nn.runs import DEFAULT_ROOT, RunNotFound, resolve_run

    try:
        parsed = _parse(action, factor)
    except ValueError as e:
        _err(str(e))
        return EXIT_USAGE
    from tui_nn.runs.remote import remote_run
    target = remote_run(run, root)
    if target is not None:
        return _remote(target, action, parsed)
    try:
        run_dir = resolve_run(run, root or DEFAULT_ROOT)
    except RunNotFound as e:
        _err(str(e))
        return EXIT_USAGE
    try:
        answer = send(run_dir, action, parsed)
    except ChannelError as e:
        status = _status_line(run_dir)
        _err(f"{run_dir}: {e}" if status is None else f"{run_dir} is not training: {status}")
        return EXIT_NOT_RUNNING
    return _answered(str(run_dir), action, parsed, answer)


def _remote(target, action: str, factor: float | None) -> int:
    """The same request to a run on another host, through ssh (see runs.remote)."""
    from tui_nn.engine.channel import ChannelError
    from tui_nn.runs.remote import NotARun, Target, locate_run, mirror, send_control
    from tui_nn.runs.ssh import SshError
    try:
        located = locate_run(target)  # a name or latest: the run it names, said as such
        target = Target(target.host, located[0])
        answer = send_control(target, action, factor, located=located)
    except NotARun as e:
        _err(str(e))
        return EXIT_USAGE
    except SshError as e:
        _err(f"{target.host}: {e}")
        return EXIT_NOT_RUNNING
    except ChannelError as e:
        listing = mirror(target).refresh()
        status = listing.runs[0].status if listing.runs and len(listing.runs) == 1 else None
        _err(f"{target}: {e}" if status in (None, "running")
             else f"{target} is not training: it is {status}")
        return EXIT_NOT_RUNNING
    return _answered(str(target), action, factor, answer)


def _answered(where: str, action: str, factor: float | None, answer: dict) -> int:
    if not answer.get("ok"):
        _err(str(answer.get("error") or "the run refused the request"))
        # Refused because the run cannot act on it (a loop that never polls it): the run's
        # state, not the command, is why: 1, as for a run that is not training.
        return EXIT_NOT_RUNNING if answer.get("refused") else EXIT_USAGE
    what = f"lr × {factor:g}" if action == "lr" else action
    say(f"{where}: {what} taken (the run is {answer.get('state', '?')})")
    return EXIT_OK


def _parse(action: str, factor: str | None) -> float | None:
    """The lr factor (None for other actions); ValueError saying what is wrong on bad input."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action '{action}': one of {', '.join(ACTIONS)} (lr takes a "
                         "FACTOR)")
    if action != "lr":
        if factor is not None:
            raise ValueError(f"{action} takes no argument (got {factor!r})")
        return None
    try:
        value = lr_factor(float(factor)) if factor is not None else None
    except ValueError:
        value = None
    if value is None:
        raise ValueError(f"{LR_FACTOR_HINT} (got {factor!r})")
    return value


def _status_line(run_dir) -> str | None:
    """Why a run is not steerable, from its status; None when it looks alive (then the
    channel's own reason, e.g. another user's socket, is the one to show)."""
    from tui_nn.engine.resume import resume_command
    from tui_nn.runs import read_run_info
    info = read_run_info(run_dir)
    if info.kind == "tensorboard":
        return ("it is a TensorBoard log of another program: `tui-nn watch` follows it, "
                "nothing steers it")
    if info.status == "running":
        return None
    if info.resumable:
        return f"it is {info.status}; continue it with `{resume_command(run_dir)}`"
    if info.status == "finished":
        return f"it is finished; train it further with `{resume_command(run_dir)} --epochs N`"
    return f"it is {info.status}"
