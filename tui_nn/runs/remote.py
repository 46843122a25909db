"""Runs on other machines, named `HOST:PATH` as scp names them, read over the user's own ssh.

Nothing is installed on the remote: one POSIX sh script lists the run files (find, stat, du)
and another reads each file from the byte where the last read stopped (tail -c +N | head -c).
What arrives goes into a private local mirror of config.json and metrics.jsonl and is read by
the same decoder as a local run (read_run_info: bounded lines, inert strings), so a remote
host's files get exactly the local untrusted-input rules. Liveness is told as runs.liveness
tells it locally: the remote /proc scan for a writer of metrics.jsonl where the listing could
make one (a run paused for hours still runs), else the file's age by the remote clock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import secrets
import shlex
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tui_nn.runs import ssh
from tui_nn.runs.info import RunInfo, read_run_info
from tui_nn.runs.records import CONFIG_FILE, METRICS_FILE
from tui_nn.runs.tensorboard import EVENTS_PREFIX
from tui_nn.fmt import fmt_bytes
from tui_nn.textsafe import clean_line

MAX_METRICS_BYTES = 64 << 20  # a remote metrics.jsonl past this is read no further
MAX_CONFIG_BYTES = 4 << 20  # as jsonl.MAX_JSON_FILE_BYTES
SLOW_EVERY_S = 5.0  # a host's GPUs and writers are read again after this long (fleet's refresh)


@dataclass(frozen=True)
class Target:
    host: str
    path: str  # as typed after the colon ("" is the remote home, "~/x" is under it)

    def __str__(self) -> str:
        return f"{self.host}:{self.shown_path}"

    @property
    def shown_path(self) -> str:
        """The path as typed, one inert line (the host is checked by split_target)."""
        return clean_line(self.path, 200)

    @property
    def shown(self) -> str:
        """The root as typed, one inert line (a folder here without its "local:")."""
        return self.shown_path if self.host == LOCAL else str(self)


LOCAL = "local"  # the host of a folder on this machine


def typed_root(text: str) -> Target:
    """A root as typed: HOST:PATH (split_target), else a folder on this machine."""
    return split_target(text) or Target(LOCAL, text)


def split_target(text: str) -> Target | None:
    """A Target when text is HOST:PATH by scp's rules, else None (a local path). A path that
    exists here wins; a "/" before the first ":" ("./a:b", "/x:y") makes it local."""
    colon = text.find(":")
    if text.startswith("["):  # [v6addr]:path
        colon = text.find("]:") + 1 if "]:" in text else -1
    if colon <= 0 or "/" in text[:colon] or os.path.exists(text):
        return None
    host = text[:colon]
    return Target(host, text[colon + 1:]) if ssh.valid_host(host) else None


def sh_path(path: str) -> str:
    """The remote path as a sh word: "~" and "~/..." under $HOME, the rest quoted as is
    (a relative path is relative to the remote home, where ssh starts)."""
    if path in ("", "~"):
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


@dataclass
class Listing:
    """One root on one host: its runs, or why none could be read."""

    target: Target
    runs: list[RunInfo] = field(default_factory=list)
    error: str | None = None
    elapsed_s: float = 0.0
    bytes_read: int = 0  # file bytes that crossed the link for this listing
    gpus: list[Gpu] | None = None  # None: not asked (a local root) or no answer
    gpu_note: str = "no GPU"  # when gpus is []: why, as the host said it
    samples_per_s: dict[str, float] = field(default_factory=dict)  # by run path, last epoch


@dataclass(frozen=True)
class Gpu:
    """One GPU of a remote host, as its nvidia-smi reported it (numbers checked)."""

    index: int
    util_pct: int
    used_mib: int
    total_mib: int

    @classmethod
    def parse(cls, text: str) -> "Gpu | None":
        fields = [f.strip() for f in text.split(",")]
        if len(fields) != 4 or not all(f.isdigit() and len(f) < 10 for f in fields):
            return None  # "[N/A]", an error line, anything unforeseen
        index, util, used, total = map(int, fields)
        return cls(index, min(util, 100), used, total) if used <= total else None


@dataclass
class _WriterScan:
    """The remote /proc scan: metrics files (paths under the root) whose writer it can see,
    and those held open for writing."""

    owned: set[str] = field(default_factory=set)
    writing: set[str] = field(default_factory=set)

    def writers_of(self, run_rel: str, local: Path) -> set[str] | None:
        """read_run_info's `writers` for the run's mirror at `local`: the scan's answer as
        the mirror's real path, or None (not visible to the scan: the file's age decides)."""
        metrics = os.path.normpath(f"{run_rel}/{METRICS_FILE}")
        if metrics not in self.owned:
            return None
        return {os.path.realpath(local / METRICS_FILE)} if metrics in self.writing else set()


@dataclass(frozen=True)
class _File:
    size: int
    mtime: float


# The listing script: "ROOT abs", "NOW t", then "F size mtime ./rel" per run file and
# "D bytes ./dir" per folder holding one (its regular files, as runs.info.dir_size counts).
# Run files only (config.json, metrics.jsonl, last.pt, events.out.tfevents.*), at most three
# levels down. GNU find prints it all in two processes; any other find falls back to stat/ls
# per file (slower, same lines). When asked (every SLOW_EVERY_S):
# - "G index, util %, used MiB, total MiB" per GPU, from NVML through tui-nn's own Python
#   where tui-nn is installed over there (system.gpu.query_lines), else from nvidia-smi;
#   "G none REASON" when there is none;
# - where GNU find and /proc are there, "PROC", then "O ./rel" per metrics.jsonl whose writer
#   the scan can see (ours, or any as root) and "W ./rel" per metrics.jsonl a process holds
#   open for writing: a run paused for hours is still running, as runs.liveness says.
_LIST = r"""R={root}
if [ ! -d "$R" ]; then
  if [ -e "$R" ]; then echo 'ERR not a directory'; else echo 'ERR no such directory'; fi; exit 0
fi
cd "$R" 2>/dev/null || {{ echo 'ERR permission denied'; exit 0; }}
printf 'ROOT %s\nNOW %s\n' "$(pwd -P)" "$(date +%s)"
runfiles() {{  # $1: more names to match (unquoted on purpose: it is several words)
  more=$1; shift
  find . -maxdepth 3 \( -name config.json -o -name metrics.jsonl \
    -o -name 'events.out.tfevents.*' $more \) -type f "$@" 2>/dev/null
}}
writers() {{  # as runs.liveness scans /proc here: who holds a metrics.jsonl open to write
  [ -d /proc/self/fd ] || return 0
  A=$(pwd -P); u=$(id -u); own=; [ "$u" = 0 ] || own="-user $u"
  echo PROC
  find . -maxdepth 3 -name metrics.jsonl -type f $own 2>/dev/null | sed 's/^/O /'
  find /proc/[0-9]*/fd -maxdepth 1 -lname '*/metrics.jsonl' -printf '%p %l\n' 2>/dev/null |
  while IFS= read -r line; do
    fd=${{line%% *}}; t=${{line#* }}; pid=${{fd#/proc/}}; pid=${{pid%%/*}}
    case $t in "$A"/*) ;; *) continue ;; esac
    f=$(sed -n 's/^flags:[[:space:]]*//p' "/proc/$pid/fdinfo/${{fd##*/}}" 2>/dev/null)
    case $f in *[123567]) printf 'W ./%s\n' "${{t#"$A"/}}" ;; esac  # O_WRONLY or O_RDWR
  done
}}
gpus() {{
  t=; command -v timeout > /dev/null 2>&1 && t="timeout 5"  # a wedged driver must not stall us
  py=$(command -v tui-nn 2>/dev/null) && py=$(sed -n '1s/^#![[:space:]]*//p' "$py" 2>/dev/null)
  g=; [ -n "$py" ] && g=$($t $py -c "{nvml}" 2>/dev/null)
  case $g in
    ''|none*)  # no tui-nn, or its NVML sees none: nvidia-smi may still
      if command -v nvidia-smi > /dev/null 2>&1; then
        $t nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total \
            --format=csv,noheader,nounits 2>/dev/null | head -n 16 | sed 's/^/G /'
      else
        echo "G ${{g:-none no GPU (no nvidia-smi)}}" | head -n 1
      fi ;;
    *) printf '%s\n' "$g" | head -n 16 | sed 's/^/G /' ;;
  esac
}}
[ {slow} = 1 ] && gpus
if find . -maxdepth 0 -printf '' 2>/dev/null; then
  runfiles "-o -name last.pt" -printf 'F %s %T@ %p\n'
  [ {slow} = 1 ] && writers
  runfiles "" | sed 's|/[^/]*$||' | sort -u | {{
    set --; while IFS= read -r d; do set -- "$@" "$d"; done
    [ $# -gt 0 ] && find "$@" -type f -printf '%s %H\n' 2>/dev/null |
      awk '{{n = $1; sub(/^[0-9]+ /, ""); s[$0] += n}}
           END {{for (d in s) printf "D %.0f %s\n", s[d], d}}'
  }}
else
  runfiles "-o -name last.pt" | while IFS= read -r f; do
    s=$(stat -c '%s %Y' -- "$f" 2>/dev/null || stat -f '%z %m' -- "$f" 2>/dev/null) &&
      printf 'F %s %s\n' "$s" "$f"
  done
  runfiles "" | sed 's|/[^/]*$||' | sort -u | while IFS= read -r d; do
    printf 'D %s %s\n' "$(find "$d" -type f -exec ls -ln {{}} + 2>/dev/null |
      awk '{{s += $5}} END {{printf "%.0f", s}}')" "$d"
  done
fi
exit 0
"""


# Run by the remote tui-nn's interpreter: the host's GPUs as nvidia-smi's CSV lines.
_NVML = ("from tui_nn.system.gpu import gpu_stats, query_lines; "
         "print(query_lines(gpu_stats()), end='')")


class Mirror:
    """The local copy of one remote root's run files, kept up to date by offset reads."""

    def __init__(self, target: Target) -> None:
        self.target = target
        key = hashlib.sha1(str(target).encode()).hexdigest()[:16]
        # Named as the folder over there (a watched run's title), within one safe word.
        # 32 characters keep a forwarded control.sock in it within sockaddr_un's 104 bytes.
        shown = re.sub(r"[^A-Za-z0-9._-]", "_", Path(target.path.rstrip("/")).name)[:32]
        self.dir = ssh.private_dir() / "mirror" / key / (shown.lstrip(".") or "home")
        self.abs_root: str | None = None
        self.seen: dict[str, _File] = {}  # remote size and mtime of what the mirror holds
        self.gpus: list[Gpu] | None = None  # from the last listing; [] is "no GPU"
        self.gpu_note = "no GPU"  # why there is none, as the host said it
        self._slow_at = -SLOW_EVERY_S  # when GPUs and writers were last asked for (monotonic)
        self.speeds: dict[str, float] = {}  # run path over there -> last epoch's samples/s
        self.lock = threading.Lock()
        self.scan: _WriterScan | None = None  # from the last listing; None: age only

    def local_dir(self, run_path: Path) -> Path:
        """Where this mirror holds the files of a run it listed (run_path: its path there)."""
        return self.dir / os.path.relpath(run_path, self.abs_root or "/")

    def refresh(self) -> Listing:
        started = time.monotonic()
        listing = Listing(self.target)
        try:
            with self.lock:
                listing.runs, listing.bytes_read = self._refresh()
                listing.gpus, listing.gpu_note = self.gpus, self.gpu_note
                listing.samples_per_s = dict(self.speeds)
        except ssh.SshError as e:
            listing.error = str(e)
        listing.elapsed_s = time.monotonic() - started
        return listing

    def _refresh(self) -> tuple[list[RunInfo], int]:
        host = ssh.host(self.target.host)
        # The GPUs and writers every SLOW_EVERY_S at most: a `watch` lists every second, and
        # starting NVML's Python (or nvidia-smi) and walking /proc that often would load the
        # box it watches.
        ask = time.monotonic() - self._slow_at >= SLOW_EVERY_S
        self._slow_at = time.monotonic() if ask else self._slow_at
        text = host.run(list_script(self.target.path, slow=ask), timeout=60,
                        max_output=16 << 20).decode("utf-8", "replace")
        files, sizes, now = self._parse(text, slow=ask)
        run_dirs, own = _runs_of(files)
        moved = self._fetch(host, {p: f for p, f in files.items()
                                   if _fetched(p, set(run_dirs), own)})
        infos = []
        for rel in run_dirs:
            local = self.dir / rel
            writers = self.scan.writers_of(rel, local) if self.scan is not None else None
            info = read_run_info(local, name=_name(rel, self.target.path), now=now,
                                 writers=writers, check_writers=writers is not None)
            infos.append(dataclasses.replace(
                info, path=Path(self.abs_root or "/") / rel, size_bytes=sizes.get(rel, 0)))
            speed = last_samples_per_s(local / METRICS_FILE)
            if speed is not None:
                self.speeds[str(infos[-1].path)] = speed
        infos.sort(key=lambda r: (r.started_at or r.last_update or 0.0, r.name), reverse=True)
        return infos, moved

    def names(self) -> dict[str, tuple[str, float]]:
        """The runs under this root by name: (its path over there, when it started as its
        files' oldest time tells), from one listing, no file's bytes crossing: what naming a
        run or `latest` needs, however large the folder's runs."""
        text = ssh.host(self.target.host).run(list_script(self.target.path, slow=False),
                                              timeout=60, max_output=16 << 20)
        files, _, _ = self._parse(text.decode("utf-8", "replace"), slow=False)
        run_dirs, _ = _runs_of(files)
        started: dict[str, float] = {}
        for rel, f in files.items():
            folder = str(Path(rel).parent)
            run = folder if folder in run_dirs else str(Path(folder).parent)
            started[run] = min(started.get(run, f.mtime), f.mtime)
        return {_name(rel, self.target.path): (str(Path(self.abs_root or "/") / rel),
                                               started.get(rel, 0.0)) for rel in run_dirs}

    def _parse(self, text: str, slow: bool = True) -> tuple[dict[str, _File], dict[str, int],
                                                          float]:
        files: dict[str, _File] = {}
        sizes: dict[str, int] = {}
        now = time.time()
        if slow:  # else the last reading stands (a run started since: its file's age decides)
            self.gpus, self.gpu_note = [], "no GPU"
            self.scan = None
        for line in text.splitlines():
            tag, _, rest = line.partition(" ")
            if tag == "PROC":
                self.scan = _WriterScan()
            elif tag in ("O", "W") and self.scan is not None and _safe_rel(rest):
                (self.scan.owned if tag == "O" else self.scan.writing).add(
                    os.path.normpath(rest))
            if tag == "G" and rest.startswith("none"):
                self.gpu_note = _words(rest[5:] or "no GPU")
            elif tag == "G" and len(self.gpus) < 16:
                gpu = Gpu.parse(rest)
                self.gpus += [gpu] if gpu is not None else []
            if tag == "ERR":
                raise ssh.SshError(_words(rest))
            if tag == "ROOT":
                self.abs_root = rest
            elif tag == "NOW" and rest.isdigit():
                now = float(rest)
            elif tag == "F":
                size, mtime, rel = (rest.split(" ", 2) + ["", ""])[:3]
                when = _seconds(mtime)
                if size.isdigit() and when is not None and _safe_rel(rel):
                    files[os.path.normpath(rel)] = _File(int(size), when)
            elif tag == "D":
                amount, _, rel = rest.partition(" ")
                if amount.isdigit() and _safe_rel(rel):
                    sizes[os.path.normpath(rel)] = int(amount)
        return files, sizes, now

    def _fetch(self, host: ssh.Host, files: dict[str, _File]) -> int:
        """Bring the mirror up to the remote sizes: only the bytes past what it holds."""
        wanted = []
        for rel, f in files.items():
            local = self.dir / rel
            local.parent.mkdir(parents=True, exist_ok=True)
            if rel.endswith("last.pt"):  # only its presence matters (resumable or not)
                local.touch()
                continue
            if self.seen.get(rel) == f:
                continue
            have = local.stat().st_size if local.exists() else 0
            cap = MAX_CONFIG_BYTES if rel.endswith(CONFIG_FILE) else MAX_METRICS_BYTES
            if f.size < have or rel.endswith(CONFIG_FILE):  # rewritten, not appended to
                have = 0
            count = min(f.size, cap + 1) - have
            if count > 0:
                wanted.append((rel, have, count))
        moved = sum(_read_ranges(host, self.abs_root or ".", batch, self.dir)
                    for batch in _batches(wanted))
        for rel, f in files.items():
            os.utime(self.dir / rel, (f.mtime, f.mtime))
        for rel in set(self.seen) - set(files):  # a checkpoint deleted over there
            if rel.endswith("last.pt"):
                (self.dir / rel).unlink(missing_ok=True)
        self.seen = dict(files)
        return moved


def list_script(path: str, slow: bool = True) -> str:
    """The listing script for the folder `path` over there (as typed after HOST:); slow: with
    the GPU lines and the /proc scan, which start a program or walk every process."""
    return _LIST.format(root=sh_path(path), nvml=_NVML, slow=int(slow))


def last_samples_per_s(metrics: Path, tail: int = 256 << 10) -> float | None:
    """The newest epoch's samples/s, from the last `tail` bytes of a metrics.jsonl (records
    decoded as everywhere; None when there is no epoch there yet)."""
    from tui_nn.engine import schema
    from tui_nn.runs import records
    try:
        with open(metrics, "rb") as f:
            start = max(0, f.seek(0, os.SEEK_END) - tail)
            f.seek(start)
            lines = f.read(tail).split(b"\n")
    except OSError:
        return None
    for line in reversed(lines[1:] if start else lines):  # a cut first line is no record
        if line.startswith(b'{"type":"EpochMetrics"'):
            record = records.parse(line)
            speed = schema.number(record.get("samples_per_s")) if record else None
            if speed is not None and 0 <= speed < 1e15:
                return speed
    return None


def _batches(wanted: list[tuple[str, int, int]]) -> list[list[tuple[str, int, int]]]:
    """Reads grouped so that one command's answer stays under MAX_METRICS_BYTES (plus one
    file's cap): many large files are fetched in several commands, never held at once."""
    batches: list[list[tuple[str, int, int]]] = []
    size = MAX_METRICS_BYTES
    for item in wanted:
        if size + item[2] > MAX_METRICS_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += item[2]
    return batches


def _read_ranges(host: ssh.Host, root: str, wanted: list[tuple[str, int, int]],
                 into: Path) -> int:
    """One remote command for every (file, offset, count); each answer ends with a line of a
    fresh random token, so no file content can pass for the framing."""
    token = secrets.token_hex(16)
    script = "".join(f"tail -c +{off + 1} -- {shlex.quote(rel)} 2>/dev/null | head -c {n}\n"
                     f"printf '\\n{token} {i}\\n'\n" for i, (rel, off, n) in enumerate(wanted))
    out = host.run(f"cd {shlex.quote(root)} || exit 1\n{script}", timeout=120)
    parts = out.split(f"\n{token} ".encode())
    moved = 0
    for i, (rel, off, n) in enumerate(wanted):
        if i >= len(parts):
            break
        data = parts[i] if i == 0 else parts[i].split(b"\n", 1)[1] if b"\n" in parts[i] else b""
        data = data[:n]
        with open(into / rel, "r+b" if off else "wb") as f:
            f.seek(off)
            f.write(data)
            f.truncate()
        moved += len(data)
    return moved


def _seconds(text: str) -> float | None:
    """A file time as find/stat print it ("1733512345" or "1733512345.1234567890")."""
    whole, _, frac = text.partition(".")
    if not (whole.isdigit() and (frac.isdigit() or not frac)) or len(whole) > 12:
        return None
    return float(f"{whole}.{frac[:9] or 0}")


def _safe_rel(rel: str) -> bool:
    """A path the listing may name: under the root, no "..", no hidden folder, one line."""
    parts = rel.split("/")
    return (rel.startswith("./") or rel == ".") and all(
        p and p != ".." and not (p.startswith(".") and p != ".") for p in parts) and len(rel) < 4096


def _is_events(rel: str) -> bool:
    return Path(rel).name.startswith(EVENTS_PREFIX)


def _runs_of(files: dict[str, _File]) -> tuple[list[str], set[str]]:
    """The run folders among the listed files, and those of them that are tui-nn runs."""
    own = {str(Path(p).parent) for p in files if Path(p).name in (CONFIG_FILE, METRICS_FILE)}
    logs = {str(Path(p).parent) for p in files if _is_events(p)}
    return _run_dirs(own | logs), own


def _fetched(rel: str, run_dirs: set[str], own: set[str]) -> bool:
    """Whether the mirror copies this listed file: a run's own files, and the event files of a
    TensorBoard log (in it or one folder down, as runs.tensorboard reads them), never those a
    tui-nn run also writes (its metrics.jsonl says the same)."""
    folder = str(Path(rel).parent)
    if not _is_events(rel):
        return folder in run_dirs
    log = folder if folder in run_dirs else str(Path(folder).parent)
    return log in run_dirs and log not in own


def _run_dirs(candidates: set[str]) -> list[str]:
    """The run folders among those holding run files, as runs.discover picks them locally: the
    root itself if it is a run; else its child runs and the runs one level below a child that
    is not one (a run's own subfolders are not runs)."""
    if "." in candidates:
        return ["."]
    picked = []
    for rel in sorted(candidates):
        parts = rel.split("/")
        if len(parts) == 1 or (len(parts) == 2 and parts[0] not in candidates):
            picked.append(rel)
    return picked


def _name(rel: str, typed: str) -> str:
    if rel == ".":
        return Path(typed.rstrip("/")).name or typed or "~"
    return rel


_MIRRORS: dict[Target, Mirror] = {}
_MIRRORS_LOCK = threading.Lock()


def mirror(target: Target) -> Mirror:
    """The one mirror of target in this process (a later refresh reads only appended bytes)."""
    with _MIRRORS_LOCK:
        if target not in _MIRRORS:
            _MIRRORS[target] = Mirror(target)
        return _MIRRORS[target]


def list_remote(targets: list[Target]) -> list[Listing]:
    """Every target listed at once, one thread each: a host that is down or hangs costs its
    own row CONNECT_TIMEOUT_S, never the others'. Same order as targets."""
    results: list[Listing | None] = [None] * len(targets)

    def one(i: int) -> None:
        results[i] = mirror(targets[i]).refresh()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r if r is not None else Listing(t, error="internal error")
            for r, t in zip(results, targets)]


def list_roots(roots: list[str]) -> list[Listing]:
    """Every root, local folders and HOST:PATH, as Listings in the order given (a local one
    as host "local"); the remote ones are read at once (list_remote)."""
    from tui_nn.runs.discover import discover_runs
    targets = [split_target(r) for r in roots]
    remote = iter(list_remote([t for t in targets if t is not None]))
    return [next(remote) if t is not None else Listing(Target(LOCAL, text),
                                                        runs=discover_runs(Path(text)))
            for text, t in zip(roots, targets)]


# Where a remote run is, and whether it has a live control channel.
_LOCATE = r"""R={path}
[ -d "$R" ] || {{ echo 'NORUN no such run directory'; exit 0; }}
cd "$R" 2>/dev/null || {{ echo 'ERR permission denied'; exit 0; }}
[ -f config.json ] || [ -f metrics.jsonl ] ||
  {{ echo 'NORUN not a run directory (no config.json or metrics.jsonl)'; exit 0; }}
printf 'DIR %s\n' "$(pwd -P)"
[ -S control.sock ] && echo SOCK
exit 0
"""


class NotARun(LookupError):
    """HOST:PATH names no run directory; the message says why. by_name: the path may still
    name a run under its folder."""

    def __init__(self, message: str, by_name: bool = False) -> None:
        super().__init__(message)
        self.by_name = by_name


def _by_name(target: Target, why: str) -> str:
    """The path over there of the run that the last part of target.path names under its
    folder ("latest" the one started last), from that folder's listing (Mirror.names)."""
    from tui_nn.runs.discover import RunNotFound, pick_by_name
    folder, _, name = target.path.rstrip("/").rpartition("/")
    if not name or name in (".", "..", "~"):
        raise NotARun(why)
    root = Target(target.host, folder or ("/" if target.path.startswith("/") else ""))
    try:
        runs = Mirror(root).names()
    except ssh.SshError:  # no such folder either
        raise NotARun(why) from None
    if name in ("latest", "last"):
        if not runs:
            raise NotARun(f"no runs under {root}/ yet")
        return max(runs.items(), key=lambda kv: (kv[1][1], kv[0]))[1][0]
    try:
        return pick_by_name(name, runs, str(root))[0]
    except RunNotFound as e:
        raise NotARun(str(e)) from None


def remote_run(run: str | None, root: str | None) -> Target | None:
    """The remote run a RUN argument and --root name (HOST:RUN, or a run's name or latest
    under --root HOST:PATH); None for a local one."""
    target = split_target(run) if run else None
    folder = split_target(root) if root and target is None else None
    if folder is not None:
        base = folder.path.rstrip("/") or ("" if folder.path.startswith("/") else "~")
        return Target(folder.host, f"{base}/{run or 'latest'}")
    return target


def locate_run(target: Target) -> tuple[str, bool]:
    """(the run's absolute path over there, has a control socket); NotARun or ssh.SshError.
    A path that is no run directory may end in a run's name under its folder, or "latest",
    as a local RUN does (gpu1:~/runs/latest)."""
    try:
        return _locate(target)
    except NotARun as e:
        if not e.by_name:
            raise
        return _locate(Target(target.host, _by_name(target, str(e))))


def _words(text: str) -> str:
    """What the host's script said (a reason, a note): one inert line."""
    return clean_line(text, 80)


def _locate(target: Target) -> tuple[str, bool]:
    text = ssh.host(target.host).run(_LOCATE.format(path=sh_path(target.path)), timeout=30,
                                     max_output=1 << 16).decode("utf-8", "replace")
    found, sock = None, False
    for line in text.splitlines():
        tag, _, rest = line.partition(" ")
        if tag in ("ERR", "NORUN"):
            raise NotARun(f"{target}: {_words(rest)}", by_name=tag == "NORUN")
        found = rest if tag == "DIR" else found
        sock = sock or tag == "SOCK"
    if not found or ":" in found or len(found) > 4000:
        raise NotARun(f"{target}: the host named no usable path")
    return found, sock


def send_control(target: Target, action: str, factor: float | None,
                 timeout: float = 5.0, located: tuple[str, bool] | None = None) -> dict:
    """channel.send to a run on another host: its control.sock is forwarded to a socket in
    this process's private folder through the existing ssh master (OpenSSH streamlocal
    forwarding: no port opens anywhere, the remote socket keeps its 0600), used once, then
    the forward is cancelled. ChannelError / NotARun / ssh.SshError as the cause.
    located: locate_run's answer when the caller has it."""
    from tui_nn.engine.channel import SOCKET_FILE, ChannelError, send

    run_dir, has_socket = located or locate_run(target)
    if not has_socket:
        raise ChannelError("no control channel (the run is not training)")
    host = ssh.host(target.host)
    local_dir = Path(tempfile.mkdtemp(dir=ssh.private_dir(), prefix="c"))
    local, remote_sock = local_dir / SOCKET_FILE, f"{run_dir}/{SOCKET_FILE}"
    host.forward(local, remote_sock)
    try:
        return send(local_dir, action, factor, timeout)
    finally:
        host.forward(local, remote_sock, cancel=True)
        local.unlink(missing_ok=True)
        local_dir.rmdir()


class FollowedRun:
    """`tui-nn watch HOST:RUN`: a mirror of one remote run kept current by a thread (each
    refresh reads only the appended bytes), which the watch screen follows as a local run
    directory; its control.sock is forwarded into the mirror while the run has one, so the
    screen's keys steer the run over there. The screen asks `liveness` (the remote listing's
    answer), not the local /proc, whether the run is alive."""

    def __init__(self, target: Target, every_s: float = 1.0) -> None:
        self.target = target  # as typed; the run's own path over there once started
        self.every_s = every_s
        self.mirror: Mirror | None = None
        self.last: Listing | None = None
        self._stop = threading.Event()
        self._forwarded: tuple[Path, str] | None = None
        self._thread = threading.Thread(target=self._loop, daemon=True, name="remote-follow")

    @property
    def run_dir(self) -> Path:
        return self.mirror.dir

    def start(self) -> "FollowedRun":
        """First read (NotARun / ssh.SshError when there is no such run), then the thread."""
        run_dir, has_socket = locate_run(self.target)
        self.target = Target(self.target.host, run_dir)  # "latest" stays the run it named
        self.mirror = mirror(self.target)
        self.last = self.mirror.refresh()
        if self.last.error:
            raise ssh.SshError(self.last.error)
        if has_socket:
            local, remote_sock = self.mirror.dir / "control.sock", f"{run_dir}/control.sock"
            # A server that forbids socket forwarding: watched, not steered.
            with contextlib.suppress(ssh.SshError):
                ssh.host(self.target.host).forward(local, remote_sock)
                self._forwarded = (local, remote_sock)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            listing = self.mirror.refresh()
            if listing.error is None:  # a dropped link keeps the mirror and status as they were
                self.last = listing

    def liveness(self, metrics: Path, pid: int | None, ended: bool) -> tuple[str, None]:
        if ended:
            return "ended", None
        runs = self.last.runs if self.last is not None else []
        return ("running" if runs and runs[0].status == "running" else "interrupted"), None

    def gpu_report(self):
        """The host's GPUs as the last listing read them (the watch screen's system pane)."""
        return gpu_report(self.last)

    def stop(self) -> None:
        self._stop.set()
        if self._forwarded is not None:
            local, remote_sock = self._forwarded
            with contextlib.suppress(ssh.SshError, OSError):
                ssh.host(self.target.host).forward(local, remote_sock, cancel=True)
            local.unlink(missing_ok=True)


def gpu_summary(listings: list[Listing]) -> str:
    """One line per remote host that answered: its GPUs' use now, or that it has none."""
    lines, seen = [], set()
    for ls in listings:
        if ls.gpus is None or ls.target.host in seen:
            continue
        seen.add(ls.target.host)
        gpus = "; ".join(f"GPU{g.index} {g.util_pct}% {fmt_bytes(g.used_mib << 20)}/"
                         f"{fmt_bytes(g.total_mib << 20)}" for g in ls.gpus)
        lines.append(f"{ls.target.host}: {gpus or ls.gpu_note}")
    return "".join(f"{ln}\n" for ln in lines)


def gpu_report(listing: Listing | None):
    """The system pane's GpuReport for a run on another host, from its last listing (the
    local GPU would be wrong)."""
    from tui_nn.system.gpu import GpuReport, GpuStats
    if listing is None or listing.gpus is None:
        return GpuReport(available=False, reason="the host's GPUs not read yet")
    if not listing.gpus:
        return GpuReport(available=False, reason=listing.gpu_note)
    return GpuReport(available=True, gpus=[GpuStats(
        index=g.index, name=f"{listing.target.host[:24]} GPU{g.index}",
        utilization_pct=float(g.util_pct), memory_used_bytes=g.used_mib << 20,
        memory_total_bytes=g.total_mib << 20, temperature_c=None, power_w=None)
        for g in listing.gpus])
