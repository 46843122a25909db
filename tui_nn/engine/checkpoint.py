"""Atomic checkpoint writes and safe loads.

A checkpoint is written to a temporary file in the same directory, fsynced and renamed over
the old one, so a crash mid-write leaves the previous checkpoint intact. Loading uses
weights_only=True: a checkpoint that would run code when unpickled is refused."""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FORMAT = 1


class CheckpointError(Exception):
    """A checkpoint cannot be written or loaded; the message is user-facing."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():
            # torch warns about foreign pickle protocols before refusing them; the refusal
            # below is the message that matters.
            warnings.simplefilter("ignore", UserWarning)
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"refusing to load {path}: it holds objects that are not plain tensors/containers "
            f"(loading it could run code). Detail: {first}") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path} is not a tui-nn checkpoint (no 'model' state)")
    return ckpt


def check_state_dict_matches(model: torch.nn.Module, state: dict[str, Any], source: str) -> None:
    """Refuse a checkpoint of another model/shape, listing what does not match."""
    own = model.state_dict()
    problems = []
    for k in own.keys() - state.keys():
        problems.append(f"missing {k}")
    for k in state.keys() - own.keys():
        problems.append(f"unexpected {k}")
    for k in own.keys() & state.keys():
        a, b = own[k], state[k]
        if hasattr(b, "shape") and tuple(a.shape) != tuple(b.shape):
            problems.append(f"{k}: model {tuple(a.shape)} vs checkpoint {tuple(b.shape)}")
    if problems:
        shown = "; ".join(sorted(problems)[:8])
        more = f" (+{len(problems) - 8} more)" if len(problems) > 8 else ""
        raise CheckpointError(f"{source} does not fit this model: {shown}{more}")
