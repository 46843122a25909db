"""`tui-nn watch HOST:RUN`: the run on another machine, through a mirror kept current over ssh
(runs.remote.FollowedRun), which the CLI opens in the watch app. Exit codes as `tui-nn
watch`: 2 when HOST:RUN names no run, 1 when the host cannot be reached."""

from __future__ import annotations

from tui_nn.textsafe import error


def open_remote(target):
    """The started FollowedRun, or the exit code after one line on stderr."""
    from tui_nn.runs import ssh
    from tui_nn.runs.remote import FollowedRun, NotARun
    try:
        return FollowedRun(target).start()
    except NotARun as e:
        error(e)
        return 2
    except ssh.SshError as e:
        error(f"{target.host}: {e}")
        return 1
