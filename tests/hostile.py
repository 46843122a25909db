"""A hostile corpus: strings and run directories that other programs (or people) could leave
where tui-nn reads, and a hypothesis strategy that mixes them into ordinary text."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hypothesis import strategies as st

ESC_TITLE = "\x1b]0;pwned\x07"  # OSC 0: sets the terminal title
CLEAR = "\x1b[2J"  # CSI: blanks the screen
HOSTILE = [
    ESC_TITLE, CLEAR, "\x1b[31mred\x1b[0m", "\x9b31m", "\x1bP+q\x1b\\", "a\x00b", "\x7f",
    "x[/]", "[/]", "[link=https://evil/x]click[/link]", "[@click=app.quit]x[/]", "[", "]",
    "[b", "\u202eevil\u202c", "\u2066iso\u2069", "w" * 5000, "line\nbreak", "tab\there", "\r",
]

# Control characters that must never reach a terminal raw (tab/newline are allowed).
FORBIDDEN = {chr(c) for c in list(range(0, 9)) + list(range(11, 32)) + list(range(127, 160))}
FORBIDDEN |= {chr(c) for c in list(range(0x202A, 0x202F)) + list(range(0x2066, 0x206A))}


def hostile_text() -> st.SearchStrategy[str]:
    """Text with pieces of the corpus, control characters and brackets mixed in."""
    piece = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=20),
                      st.characters(codec="utf-8").map(str))
    return st.lists(piece, max_size=6).map("".join)


def inert(text: str) -> bool:
    """No control character (but tab/newline) and no bidi override in text."""
    return not (set(text) & FORBIDDEN)


def record(**fields) -> str:
    return json.dumps(fields, separators=(",", ":")) + "\n"


def started(model: str = "cnn", dataset: str = "digits", **kw) -> dict:
    return dict(type="RunStarted", run_dir=None, model=model, dataset=dataset, device="cpu",
                device_name=kw.pop("device_name", "CPU"), task="classification",
                metric="accuracy", n_train=640, n_val=100, epochs=2, batch_size=64,
                steps_per_epoch=10, total_steps=20, parameters=8490, **kw)


def epoch(e: int) -> dict:
    return dict(type="EpochMetrics", epoch=e, step=(e + 1) * 10, train_loss=1.0 / (e + 1),
                val_loss=1.1 / (e + 1), metric="accuracy", value=0.5 + e / 10,
                best_value=0.5 + e / 10, is_best=True, elapsed_s=1.0 + e, epoch_time_s=1.0,
                samples_per_s=640.0)


def good_run(path: Path, model: str = "cnn", dataset: str = "digits", *, extra: str = "",
             final: dict | None = None, checkpoint: bool = False) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model": model, "dataset": dataset,
                                                  "epochs": 2, "lr": 0.01}))
    final = final or dict(type="Finished", status="stopped", run_dir=None, epochs_done=2,
                          step=20, metric="accuracy", best_value=0.6, last_value=0.6,
                          elapsed_s=2.0)
    lines = [record(**started(model, dataset)), record(**epoch(0)), extra,
             record(**epoch(1)), record(**final)]
    (path / "metrics.jsonl").write_text("".join(lines))
    if checkpoint:
        (path / "last.pt").write_bytes(b"not really a checkpoint")
    old = time.time() - 3600  # not "running"
    for name in ("config.json", "metrics.jsonl"):
        os.utime(path / name, (old, old))
    return path


def hostile_tree(root: Path, big_line: bool = True) -> dict[str, Path]:
    """One run of each hostile kind next to good ones; {kind: run directory}. big_line=False
    leaves out the 50 MB line (for tests about other things: it costs disk and time)."""
    runs = {"good": good_run(root / "good-run")}
    runs["escapes"] = good_run(
        root / f"esc{ESC_TITLE}{CLEAR}name", model=f"\x1b[31mcnn{ESC_TITLE}",
        dataset=f"d{CLEAR}", final=dict(type="Failed", message=f"boom{ESC_TITLE}{CLEAR}",
                                        kind=f"k{CLEAR}", step=3), checkpoint=True)
    runs["markup"] = good_run(root / "x[" / "]y", dataset="csv:d[/]x.csv[link=https://e/]",
                              checkpoint=True)
    runs["deep"] = good_run(root / "deep-json", extra="[" * 200_000 + "\n"
                            + '{"type":"StateChanged","state":' + "[" * 500 + "]" * 500 + "}\n")
    big = root / "big-line"
    good_run(big)
    with open(big / "metrics.jsonl", "r+b") as f:  # 50 MB in one line, then good records
        rest = f.read()
        f.seek(0)
        size = (50 << 20) if big_line else 10
        f.write(b'{"type":"StepMetrics","x":"' + b"a" * size + b'"}\n' + rest)
    runs["big"] = big
    fifo = root / "fifo-run"
    fifo.mkdir()
    os.mkfifo(fifo / "metrics.jsonl")
    os.mkfifo(fifo / "config.json")
    runs["fifo"] = fifo
    link = root / "symlink-run"
    link.mkdir()
    os.symlink("/dev/zero", link / "metrics.jsonl")
    os.symlink("/dev/urandom", link / "config.json")
    os.symlink("/etc/passwd", link / "last.pt")
    runs["symlink"] = link
    runs["types"] = good_run(root / "wrong-types", extra=record(
        type="EpochMetrics", epoch="1", step=[], train_loss="x", val_loss={}, metric=3,
        value=10 ** 400, best_value=None, is_best=1, elapsed_s=1, epoch_time_s=1,
        samples_per_s=1) + record(type="RunStarted", model=7, loss=1, __class__="x"))
    return runs


def wait_until(pilot, predicate, timeout: float = 10.0, what: str = "condition"):
    async def waiter():
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await pilot.pause(0.05)
    return waiter()
