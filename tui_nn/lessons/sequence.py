"""Sequence views: the char RNN's decoded output per epoch ('hello' -> 'ohlol') and the plain
RNN against LSTM and GRU on the long-range task as the sequence grows.

Both drive the engine's Trainer (save=False), so they train exactly as `tui-nn train` does and
can run in the same background thread as any other training; ``stop`` (a threading.Event)
ends them early.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn

from tui_nn.insight.threads import torch_threads
from tui_nn.lessons import train_epochs
from tui_nn.zoo.sequence import remember_init  # noqa: F401 - re-exported for the views

CELLS = ("rnn", "lstm", "gru")
ZOO_NAMES = {"rnn": "rnn-seq", "lstm": "lstm", "gru": "gru"}
GATE_INITS = ("remember", "pytorch")


# ---- the char RNN ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DecodedEpoch:
    epoch: int  # 0-based
    decoded: str  # the model's output for 'hello' after this epoch
    train_loss: float
    accuracy: float  # share of the 5 characters right


def char_rnn_progress(epochs: int = 15, *, seed: int = 0, lr: float | None = None,
                      on_epoch: Callable[[DecodedEpoch], None] | None = None,
                      stop: threading.Event | None = None) -> list[DecodedEpoch]:
    """Train the zoo's char RNN on 'hello' -> 'ohlol' and record what it says after each epoch
    (the zoo defaults: 15 epochs of one sample, Adam lr 0.1, well under a second)."""
    from tui_nn.engine.config import TrainConfig

    out: list[DecodedEpoch] = []

    def record(event: Any) -> None:
        out.append(DecodedEpoch(event.epoch, event.decoded or "", event.train_loss, event.value))
        if on_epoch is not None:
            on_epoch(out[-1])

    cfg = TrainConfig("rnn", dataset="hello", epochs=epochs, lr=lr, seed=seed, save=False,
                      device="cpu")
    with torch_threads(1):
        train_epochs(cfg, record, stop, "training the char RNN failed")
    return out


# ---- RNN vs LSTM vs GRU on the long-range task ------------------------------------------------

@dataclass(frozen=True)
class TimestepGradients:
    """How much gradient reaches each input time step: norms[t] = ‖∂loss/∂x_t‖ summed over
    the batch, t = 0 (the symbol to remember) ... length - 1 (next to the readout)."""

    cell: str
    length: int
    norms: list[float]

    @property
    def first_over_last(self) -> float:
        return self.norms[0] / self.norms[-1] if self.norms[-1] > 0 else math.nan


def timestep_gradients(cells: Sequence[str] = CELLS, length: int = 50, *, hidden_size: int = 16,
                       batch: int = 64, seed: int = 0, gate_init: str = "remember"
                       ) -> dict[str, TimestepGradients]:
    """The mechanism behind the long-range table, at initialisation: one forward and backward
    per cell on a batch of longrange:length, reading the gradient with respect to the inputs.

    A tanh RNN's gradient to step 0 is many orders of magnitude below the last step's (it is
    multiplied by the recurrent Jacobian once per step); gates that start remembering keep
    it within a few. Cheap (one backward), so a view can draw it at once while the
    accuracy table is still training.
    """
    from tui_nn.data import load_dataset

    data = load_dataset(f"longrange:{length}", seed=seed, n_train=batch, n_val=1)
    x = data.train_x.clone().requires_grad_(True)  # (B, L, 4)
    out: dict[str, TimestepGradients] = {}
    with torch_threads(1):
        for cell in cells:
            out[cell] = _timestep_gradients(cell, x, data.train_y, length, hidden_size, seed,
                                            gate_init)
    return out


def _timestep_gradients(cell: str, x: torch.Tensor, y: torch.Tensor, length: int,
                        hidden_size: int, seed: int, gate_init: str) -> TimestepGradients:
    model = _classifier(cell, x.shape[-1], hidden_size, 4, length, seed, gate_init)
    x.grad = None
    nn.functional.cross_entropy(model(x), y).backward()
    norms = x.grad.norm(dim=(0, 2))  # (L,) per time step
    return TimestepGradients(cell, length, norms.tolist())


def _classifier(cell: str, input_size: int, hidden_size: int, num_classes: int, length: int,
                seed: int, gate_init: str) -> nn.Module:
    """The same initial weights for a cell whatever else runs (gates as gate_init says)."""
    from tui_nn.zoo.sequence import SequenceClassifier

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SequenceClassifier(cell, input_size=input_size, hidden_size=hidden_size,
                                   num_classes=num_classes, gate_init="pytorch")
    if gate_init == "remember":
        remember_init(model, length, seed=seed)
    return model


@dataclass(frozen=True)
class LongRangeResult:
    cell: str
    length: int
    accuracy: float  # best validation accuracy over the epochs
    history: list[float]  # validation accuracy per epoch
    seconds: float


@dataclass(frozen=True)
class LongRangeTable:
    """accuracy[cell][i] is the best validation accuracy of that cell at lengths[i]."""

    lengths: tuple[int, ...]
    cells: tuple[str, ...]
    accuracy: dict[str, list[float]]
    results: list[LongRangeResult]
    seconds: float
    settings: dict[str, object] = field(default_factory=dict)
    complete: bool = True  # False when stopped early (missing cells are nan)


def long_range_comparison(lengths: Sequence[int] = (5, 10, 20, 40, 80),
                          cells: Sequence[str] = CELLS, *, epochs: int = 15, seed: int = 0,
                          hidden_size: int = 16, lr: float = 0.005, batch_size: int = 64,
                          optimizer: str = "adam", gate_init: str = "remember",
                          n_train: int | None = None, device: str = "cpu",
                          threads: int | None = 1,
                          on_result: Callable[[LongRangeResult], None] | None = None,
                          stop: threading.Event | None = None) -> LongRangeTable:
    """Train SequenceClassifier(cell) on longrange:L for every cell and length.

    Every cell gets the same data, optimizer, learning rate, epochs and hidden size;
    gate_init="remember" applies ``remember_init`` to the gated cells (see there for why),
    "pytorch" leaves PyTorch's initialisation. on_result is called after each run (for a
    table that fills in as it goes). threads: torch's intra-op threads while it runs (see
    ``torch_threads``; None leaves the setting alone).

    Defaults, measured on 2 CPU cores (seeds 0 and 1, about 110 s for the whole table):
    hidden 16, Adam lr 0.005 (the zoo's), 15 epochs of 4000 sequences. The plain RNN is at
    chance from 40-80 steps (at 40 it sometimes finds a way after ~8 epochs; never at 80),
    LSTM and GRU reach 100 % at every length. A larger hidden size helps the RNN more than the
    gated cells: with 32 units Adam's noise drives its recurrent weights to where a gradient
    gets through and it can solve 80 steps in some seeds.
    """
    unknown = [c for c in cells if c not in CELLS]
    if unknown:
        raise ValueError(f"unknown cell(s) {unknown}; choose from {', '.join(CELLS)}")
    if gate_init not in GATE_INITS:
        raise ValueError(f"gate_init must be one of {', '.join(GATE_INITS)}, got {gate_init!r}")
    with torch_threads(threads if device == "cpu" else None):
        return _long_range(lengths, cells, epochs, seed, hidden_size, lr, batch_size,
                           optimizer, gate_init, n_train, device, on_result, stop)


def _long_range(lengths: Sequence[int], cells: Sequence[str], epochs: int, seed: int,
                hidden_size: int, lr: float, batch_size: int, optimizer: str, gate_init: str,
                n_train: int | None, device: str,
                on_result: Callable[[LongRangeResult], None] | None,
                stop: threading.Event | None) -> LongRangeTable:
    from tui_nn.data import load_dataset

    t0 = time.monotonic()
    lengths, cells = tuple(lengths), tuple(cells)
    accuracy = {c: [math.nan] * len(lengths) for c in cells}
    results: list[LongRangeResult] = []
    complete = True
    for i, length in enumerate(lengths):
        options = {"n_train": n_train} if n_train else {}
        data = load_dataset(f"longrange:{length}", seed=seed, **options)
        for cell in cells:
            if stop is not None and stop.is_set():
                complete = False
                break
            result = _train_cell(cell, length, data, stop, epochs=epochs, seed=seed,
                                 hidden_size=hidden_size, lr=lr, batch_size=batch_size,
                                 optimizer=optimizer, gate_init=gate_init, device=device)
            if result is None:
                complete = False
                break
            accuracy[cell][i] = result.accuracy
            results.append(result)
            if on_result is not None:
                on_result(result)
        if not complete:
            break
    settings = {"epochs": epochs, "seed": seed, "hidden_size": hidden_size, "lr": lr,
                "batch_size": batch_size, "optimizer": optimizer, "gate_init": gate_init,
                "n_train": n_train or 4000}
    return LongRangeTable(lengths, cells, accuracy, results, time.monotonic() - t0, settings,
                          complete=complete)


def _train_cell(cell: str, length: int, data, stop: threading.Event | None, *, epochs: int,
                seed: int, hidden_size: int, lr: float, batch_size: int, optimizer: str,
                gate_init: str, device: str) -> LongRangeResult | None:
    """One cell trained on one length; None when stopped before its first epoch ended."""
    from tui_nn.engine.config import TrainConfig

    model = _classifier(cell, data.input_shape[-1], hidden_size, data.num_classes or 4, length,
                        seed, gate_init)
    history: list[float] = []
    cfg = TrainConfig(ZOO_NAMES[cell], dataset=data.name, epochs=epochs,
                      batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed,
                      save=False, device=device)
    start = time.monotonic()
    train_epochs(cfg, lambda event: history.append(event.value), stop,
                 f"training the {cell} on longrange:{length} failed", model=model, dataset=data)
    if not history:
        return None
    return LongRangeResult(cell, length, max(history), history,
                           time.monotonic() - start)
