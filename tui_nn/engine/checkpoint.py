"""Checkpoints: what a run's state is (capture/restore), atomic writes and safe loads.

A checkpoint is written through tui_nn.fsio.atomic_write (temp file, fsync, rename), so a crash
or a full disk mid-write leaves the previous checkpoint intact. Loading uses weights_only=True:
a checkpoint that would run code when unpickled is refused. Every refusal says in words what
the file is and what to pass instead.
"""

from __future__ import annotations

import math
import pickle
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tui_nn.version import __version__
from tui_nn.engine import events as ev
from tui_nn.engine.errors import CheckpointError, TrainingError
from tui_nn.engine.rundir import BEST_CHECKPOINT, CONFIG_FILE, LAST_CHECKPOINT
from tui_nn.fsio import DiskWriteError, atomic_write
from tui_nn.textsafe import first_line

if TYPE_CHECKING:  # pragma: no cover
    from tui_nn.engine.prepared import Prepared
    from tui_nn.engine.state import RunState

CHECKPOINT_FORMAT = 1
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since 1.6
_PICKLE_MAGIC = b"\x80"  # the legacy format starts with a pickle protocol byte
# A whole zip ends with its end-of-central-directory record (22 bytes + a comment < 64 KiB).
_EOCD_MAGIC = b"PK\x05\x06"
_EOCD_SEARCH = 22 + 65535
_MAX_COUNT = 2.0 ** 53  # samples, seconds, steps: more than any run, exact as a float


def atomic_save(obj: Any, path: str | Path) -> Path:
    """torch.save through an atomic write; raises fsio.DiskWriteError (an OSError)."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def capture(p: "Prepared", st: "RunState", epoch: int, step_in_epoch: int) -> dict[str, Any]:
    """Everything a bitwise-identical resume needs, from a run between two steps."""
    scaler, plugin = p.scaler, p.step_plugin
    return {
        "format": CHECKPOINT_FORMAT,
        "tui_nn_version": __version__,
        "model": p.model.state_dict(),
        "optimizer": p.optimizer.state_dict(),
        "scheduler": p.scheduler.state_dict() if p.scheduler else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "epoch": epoch,
        "step_in_epoch": step_in_epoch,
        "step": st.step,
        # At an epoch boundary the generator already sits at the next epoch's start.
        "epoch_gen_state": (p.generator.get_state() if step_in_epoch == 0
                            else st.epoch_gen_state),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": (torch.cuda.get_rng_state(p.device) if p.device.type == "cuda" else None),
        "best_value": st.best_value,
        "config": p.config.to_dict(),
        "threads": torch.get_num_threads() if p.device.type == "cpu" else 0,
        # A step plugin's own state (the GAN's second optimizer and noise generator).
        "step_plugin": plugin.state_dict() if plugin is not None else None,
        "epoch_so_far": (epoch_so_far(st) if step_in_epoch and st.epoch_loss_sum is not None
                         else None),
    }


def epoch_so_far(st: "RunState") -> dict[str, Any]:
    """The running sums of the epoch a mid-epoch checkpoint cuts (train_loss, time, samples/s,
    the plugin's scalar means), so that the resumed epoch's record covers all its steps. Under
    DDP this is rank 0's share of the loss sum, which each rank then carries: an estimate."""
    return {"loss_sum": float(st.epoch_loss_sum),
            "terms": int(st.epoch_terms), "time_s": time.monotonic() - st.epoch_t0,
            "scalars": st.scalars.state_dict()}


def _epoch_so_far_of(saved: Any) -> dict[str, Any] | None:
    """epoch_so_far from a checkpoint file (data: numbers checked here), or None when it is
    absent or not what epoch_so_far() writes (the epoch then restarts its sums)."""
    def number(v: Any, top: float = math.inf) -> float | None:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        return float(v) if ok and abs(v) <= top else None

    if not isinstance(saved, dict):
        return None
    scalars = saved.get("scalars") or {"sums": {}, "n": 0}
    sums = scalars.get("sums") if isinstance(scalars, dict) else None
    loss_sum, terms, time_s, n = (number(saved.get("loss_sum")),
                                  number(saved.get("terms"), _MAX_COUNT),
                                  number(saved.get("time_s"), _MAX_COUNT),
                                  number(scalars.get("n", 0) if isinstance(scalars, dict) else None,
                                         _MAX_COUNT))
    if None in (loss_sum, terms, time_s, n) or min(terms, time_s, n) < 0 \
            or not isinstance(sums, dict) \
            or any(not isinstance(k, str) or number(v) is None for k, v in sums.items()):
        return None
    return {"loss_sum": loss_sum, "terms": int(terms), "time_s": time_s,
            "scalars": {"sums": sums, "n": int(n)}}


def write_last(p: "Prepared", st: "RunState", epoch: int, step_in_epoch: int,
               reason: str) -> ev.CheckpointSaved:
    """last.pt := the run's state after its current step; returns the CheckpointSaved
    event. A write error becomes TrainingError(kind "disk") naming the intact checkpoint."""
    path = p.run_dir.last_checkpoint
    try:
        atomic_save(capture(p, st, epoch, step_in_epoch), path)
    except OSError as e:
        raise TrainingError(f"could not write checkpoint {path}: {os_reason(e)}{intact_note(st)}",
                            "disk") from None
    st.last_save = time.monotonic()
    st.last_saved_step = st.step
    return ev.CheckpointSaved(path=str(path), step=st.step, epoch=epoch, reason=reason)


def write_best(p: "Prepared", st: "RunState", epoch: int) -> ev.CheckpointSaved:
    """best.pt := the weights of this epoch, the best so far (model state only), written
    before the next epoch starts so no kill can take them. Returns the event to emit."""
    path = p.run_dir.best_checkpoint
    try:
        atomic_save({"format": CHECKPOINT_FORMAT, "model": p.model.state_dict(),
                     "best_value": st.best_value, "step": st.step, "epoch": epoch + 1,
                     "config": p.config.to_dict()}, path)
    except OSError as e:
        raise TrainingError(f"could not write {path}: {os_reason(e)}", "disk") from None
    return ev.CheckpointSaved(path=str(path), step=st.step, epoch=epoch + 1, reason="best")


def intact_note(st: "RunState") -> str:
    """After a failed write: the checkpoint still whole ('' before the run's first save)."""
    step = st.last_saved_step
    return f"; the checkpoint of step {step} is intact" if step is not None else ""


def os_reason(e: OSError) -> str:
    """A write error in words (DiskWriteError already names the file and the free space)."""
    return str(e) if isinstance(e, DiskWriteError) else (e.strerror or str(e))


def restore(p: "Prepared", st: "RunState", ckpt: dict[str, Any]) -> None:
    """Put a run (model, optimizer, schedule, scaler, RNGs, position) back to ckpt."""
    check_state_dict_matches(p.model, ckpt["model"], "checkpoint")
    p.model.load_state_dict(ckpt["model"])
    p.optimizer.load_state_dict(ckpt["optimizer"])
    if p.scheduler is not None and ckpt.get("scheduler"):
        p.scheduler.load_state_dict(ckpt["scheduler"])
    if p.scaler is not None and ckpt.get("scaler"):
        p.scaler.load_state_dict(ckpt["scaler"])
    st.step = st.last_saved_step = int(ckpt["step"])  # a NaN before the next save names it
    st.start_epoch = int(ckpt["epoch"])
    st.start_step_in_epoch = int(ckpt.get("step_in_epoch", 0))
    st.epoch_gen_state = ckpt["epoch_gen_state"]
    p.generator.set_state(ckpt["epoch_gen_state"])
    torch.set_rng_state(ckpt["torch_rng"])
    if p.device.type == "cuda" and ckpt.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(ckpt["cuda_rng"], p.device)
    st.best_value = ckpt.get("best_value")
    st.carried = _epoch_so_far_of(ckpt.get("epoch_so_far")) if st.start_step_in_epoch else None
    plugin = p.step_plugin
    if plugin is not None:
        if not ckpt.get("step_plugin"):
            raise CheckpointError("checkpoint has no state for this model's training step "
                                  "(was it written by another model?)")
        plugin.load_state_dict(ckpt["step_plugin"])


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A tui-nn training checkpoint (a run directory means its last.pt)."""
    path = Path(path)
    if path.is_dir():
        path = path / LAST_CHECKPOINT
    _check_is_checkpoint_file(path)
    ckpt = _torch_load(path, map_location)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path} is not a tui-nn checkpoint (no 'model' state)")
    if path.name == BEST_CHECKPOINT or "optimizer" not in ckpt:
        raise CheckpointError(
            f"{path} holds only a model's weights (best.pt), not the optimizer and position a "
            f"resume needs: resume the run with --resume {path.parent}")
    return ckpt


def _check_is_checkpoint_file(path: Path) -> None:
    if path.is_symlink():
        raise CheckpointError(f"refusing {path}: it is a symlink (tui-nn only loads "
                              "checkpoints that are regular files inside the run)")
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file, so not a checkpoint")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(max(0, path.stat().st_size - _EOCD_SEARCH))
            tail = f.read()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror}") from None
    if path.name == CONFIG_FILE or not (head.startswith(_ZIP_MAGIC)
                                        or head.startswith(_PICKLE_MAGIC)):
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is not one (not a file torch.save wrote); "
            "pass a run directory to --resume")
    if head.startswith(_ZIP_MAGIC) and _EOCD_MAGIC not in tail:
        raise CheckpointError(f"{path} is truncated (its end is missing: an interrupted copy "
                              "or write?); use another checkpoint of the run")


def _torch_load(path: Path, map_location: Any) -> Any:
    try:
        with warnings.catch_warnings():
            # torch warns about foreign pickle protocols before refusing them; the refusal
            # below is the message that matters.
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refusing to load {path}: it holds objects that are not plain tensors/containers "
            f"(loading it could run code). Detail: {first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file gets a one-line answer
        text = str(e)
        if "central directory" in text or "EOF" in text or "truncat" in text.lower():
            raise CheckpointError(f"{path} is truncated or damaged (an interrupted copy or "
                                  f"write?): {first_line(e)}") from None
        raise CheckpointError(f"cannot read checkpoint {path}: {first_line(e)}") from None


def check_state_dict_matches(model: torch.nn.Module, state: dict[str, Any], source: str) -> None:
    """Refuse a checkpoint of another model/shape, listing what does not match."""
    own = model.state_dict()
    problems = [f"missing {k}" for k in own.keys() - state.keys()]
    problems += [f"unexpected {k}" for k in state.keys() - own.keys()]
    for k in own.keys() & state.keys():
        a, b = own[k], state[k]
        if hasattr(b, "shape") and tuple(a.shape) != tuple(b.shape):
            problems.append(f"{k}: model {tuple(a.shape)} vs checkpoint {tuple(b.shape)}")
    if problems:
        shown = "; ".join(sorted(problems)[:8])
        more = f" (+{len(problems) - 8} more)" if len(problems) > 8 else ""
        raise CheckpointError(f"{source} does not fit this model: {shown}{more}")
