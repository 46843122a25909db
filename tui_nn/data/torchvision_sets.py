"""``mnist``, ``fashion-mnist`` and ``cifar10`` through torchvision, decoded once into tensors.

The files live in torchvision's own layout under the data folder (``$TUI_NN_DATA`` or
``./data``): ``DIR/MNIST/raw``, ``DIR/FashionMNIST/raw``, ``DIR/cifar-10-batches-py``, so a
folder that already serves torchvision scripts (like the seeds') works unchanged.

We read ``.data`` / ``.targets`` once instead of going through per-sample transforms; the
engine normalises on the device. Offline, nothing may hang: existence is checked first, the
mirror is probed with a short, thread-bounded timeout before torchvision is asked to download,
and every failure becomes one DataError that says which files to put where, or to use ``digits``.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import tarfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from tui_nn.textsafe import first_line

from .base import Dataset, DataError, unit_float

_PROBE_TIMEOUT_S = 4.0
_DOWNLOAD_SOCKET_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class _Source:
    name: str  # registry name
    title: str  # as people write it
    tv_class: str  # torchvision.datasets attribute
    subdir: str  # where the files must be, relative to the data folder
    files: tuple[str, ...]  # the files that must be there
    mean: tuple[float, ...]
    std: tuple[float, ...]
    labels: tuple[str, ...] | None  # None: take the torchvision class's own names
    archive: str | None = None  # an archive in the data folder we can unpack ourselves


_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

SOURCES: dict[str, _Source] = {
    "mnist": _Source(
        name="mnist",
        title="MNIST",
        tv_class="MNIST",
        subdir="MNIST/raw",
        files=_IDX_FILES,
        mean=(0.1307,),
        std=(0.3081,),
        labels=tuple(str(d) for d in range(10)),
    ),
    "fashion-mnist": _Source(
        name="fashion-mnist",
        title="Fashion-MNIST",
        tv_class="FashionMNIST",
        subdir="FashionMNIST/raw",
        files=_IDX_FILES,
        mean=(0.2860,),
        std=(0.3530,),
        labels=None,
    ),
    "cifar10": _Source(
        name="cifar10",
        title="CIFAR-10",
        tv_class="CIFAR10",
        subdir="cifar-10-batches-py",
        files=tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta"),
        # The true per-channel std of the training set (0.2023-style values are a famous typo).
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        labels=None,
        archive="cifar-10-python.tar.gz",
    ),
}


def default_data_dir() -> Path:
    return Path(os.environ.get("TUI_NN_DATA") or "data")


def _missing_files(src: _Source, root: Path) -> list[str]:
    folder = root / src.subdir
    return [f for f in src.files if not (folder / f).is_file()]


def _unpack_local_copies(src: _Source, root: Path) -> None:
    """Use files the user dropped in compressed: FILE.gz next to FILE, or CIFAR's tarball."""
    folder = root / src.subdir
    for name in src.files:
        target, packed = folder / name, folder / f"{name}.gz"
        if target.is_file() or not packed.is_file():
            continue
        from tui_nn.fsio import atomic_write
        try:
            with gzip.open(packed, "rb") as fin:
                atomic_write(target, lambda fout: shutil.copyfileobj(fin, fout))
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataError(
                f"{packed} is truncated or corrupt ({exc}); delete it and download it again"
            ) from None
        except OSError as exc:
            raise DataError(f"cannot unpack {packed} in {folder}: {exc}") from None
    if src.archive and _missing_files(src, root) and (root / src.archive).is_file():
        try:
            with tarfile.open(root / src.archive, "r:gz") as tar:
                # The "data" filter refuses paths escaping the folder; old Pythons lack it.
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(root, filter="data")
                else:  # pragma: no cover
                    tar.extractall(root)
        except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
            raise DataError(
                f"{root / src.archive} is truncated or corrupt ({exc}); delete it and download it again"
            ) from None


def _missing_message(src: _Source, root: Path, reason: str) -> str:
    folder = (root / src.subdir).resolve()
    missing = _missing_files(src, root)
    if src.files == _IDX_FILES:
        where = f"{', '.join(src.files)} (each may be .gz) in {folder}"
    else:
        where = f"{', '.join(src.files)} in {folder} (or {src.archive} in {root.resolve()})"
    if 0 < len(missing) < len(src.files):
        problem = f"{src.title} in {folder} lacks {', '.join(missing)}"
    else:
        problem = f"{src.title} is not in {folder}"
    return f"{problem} and {reason}. Put {where}, or use the embedded 'digits' set, which needs no download."


def _reachable(url: str) -> str | None:
    """None when the mirror answers, else a short reason. Bounded even when DNS hangs."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"{host} unreachable: {exc.strerror or exc}")

    worker = threading.Thread(target=probe, daemon=True, name="tui-nn-probe")
    worker.start()
    worker.join(_PROBE_TIMEOUT_S + 1.0)
    return outcome[0] if outcome else f"{host} did not answer within {_PROBE_TIMEOUT_S:.0f} s"


def _mirror_urls(tv_cls: type) -> list[str]:
    return list(getattr(tv_cls, "mirrors", None) or [tv_cls.url])


def _download(src: _Source, tv_cls: type, root: Path) -> str | None:
    """Try torchvision's download; None on success, else a one-line reason."""
    reasons = []
    for url in _mirror_urls(tv_cls):
        reason = _reachable(url)
        if reason is None:
            break
        reasons.append(reason)
    else:
        return f"it could not be downloaded (offline? {reasons[0]})"
    previous = socket.getdefaulttimeout()
    # torchvision opens URLs without a timeout; a stalled connection must not hang the app.
    socket.setdefaulttimeout(_DOWNLOAD_SOCKET_TIMEOUT_S)
    try:
        # One call fetches every file of the set; train=False decodes only the smaller split.
        tv_cls(root=str(root), train=False, download=True)
    except Exception as exc:  # URLError, timeouts, HTTP errors, md5 mismatches: all mean "no data"
        return f"the download failed ({first_line(exc)})"
    finally:
        socket.setdefaulttimeout(previous)
    return None


def _decode(src: _Source, tv_ds, as_uint8: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, C, H, W) float in [0, 1] or uint8, class ids (N,) int64) from .data /
    .targets."""
    data = tv_ds.data
    pixels = data if isinstance(data, torch.Tensor) else torch.from_numpy(data)
    if pixels.dim() == 3:  # MNIST-style (N, H, W)
        pixels = pixels.unsqueeze(1)  # (N, 1, H, W)
    else:  # CIFAR-style numpy (N, H, W, C)
        pixels = pixels.permute(0, 3, 1, 2)  # (N, C, H, W)
    x = pixels.contiguous() if as_uint8 else unit_float(pixels).contiguous()
    targets = tv_ds.targets
    y = targets.long() if isinstance(targets, torch.Tensor) else torch.tensor(targets, dtype=torch.int64)
    return x, y


def load_torchvision(
    name: str, *, data_dir: str | Path | None = None, download: bool = True,
    as_uint8: bool = False, **_: object
) -> Dataset:
    """One of SOURCES as (N, C, H, W) float tensors in [0, 1] (uint8 with as_uint8); DataError
    when the files are missing."""
    src = SOURCES[name]
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if (root / src.subdir).is_dir() or (src.archive and (root / src.archive).is_file()):
        _unpack_local_copies(src, root)
    import torchvision.datasets as tvd

    tv_cls = getattr(tvd, src.tv_class)
    if _missing_files(src, root):
        if not download:
            raise DataError(_missing_message(src, root, "downloading is turned off"))
        reason = _download(src, tv_cls, root)
        if reason is not None:
            raise DataError(_missing_message(src, root, reason))
    try:
        train = tv_cls(root=str(root), train=True, download=False)
        val = tv_cls(root=str(root), train=False, download=False)
    except Exception as exc:  # torchvision raises RuntimeError/AssertionError/ValueError on bad files
        folder = (root / src.subdir).resolve()
        raise DataError(
            f"{src.title} files in {folder} cannot be read ({first_line(exc)}); "
            "delete them and download again, or use the embedded 'digits' set"
        ) from None
    train_x, train_y = _decode(src, train, as_uint8)
    val_x, val_y = _decode(src, val, as_uint8)
    labels = src.labels or tuple(str(c) for c in train.classes)
    return Dataset(
        name=src.name,
        task="classification",
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        input_shape=tuple(train_x.shape[1:]),
        num_classes=len(labels),
        mean=src.mean,
        std=src.std,
        labels=labels,
        description=(
            f"{src.title} (torchvision, {root / src.subdir}): {len(train_y)} train / "
            f"{len(val_y)} val, {'×'.join(map(str, train_x.shape[1:]))}"
        ),
    )
