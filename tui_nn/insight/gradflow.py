"""Gradient flow: per-layer gradient norm, weight norm and update/weight ratio, and warnings
for layers whose gradients vanish, die or explode.

The engine owns the loop; a monitor is only asked now and then:

    monitor = GradientMonitor(model, example_input=xb[:1])   # once, before training
    ...
    loss.backward()
    if step % 50 == 0:                                        # at report time, not every step
        snap = monitor.observe(model, lr=opt.param_groups[0]["lr"], step=step)
    opt.step()

``observe`` must run after ``backward`` and before ``zero_grad``/``step`` (the gradients are
read, the weights are the ones the gradients belong to). Call it before gradient clipping to see
the raw gradients; with a GradScaler pass ``grad_scale=scaler.get_scale()`` (or call it after
``scaler.unscale_``). It reads every norm in one host sync.

Thresholds, and why:
- vanishing/dead: a layer's gradient norm is below ``vanish_abs`` (1e-7, absolute) or below
  ``vanish_rel`` (1e-3) times the largest layer gradient norm of the same observation, for
  ``patience`` consecutive observations. The absolute floor catches dead ReLU layers (exactly 0)
  in any net; the relative one catches a deep sigmoid stack, whose first layers get gradients
  three to six orders of magnitude below the last even though nothing is exactly zero (a
  healthy net's layers stay within one or two). A layer at
  exactly 0 for the whole run of observations is reported as "dead", otherwise "vanishing".
- exploding: a gradient norm above ``explode_abs`` (1e3) or not finite, reported at once.
A warning is raised when a layer enters a state and again only after it has left it, so a
long run logs each episode once.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch import nn

from tui_nn.insight.threads import torch_threads
from tui_nn.modelmode import in_mode

VANISH_ABS = 1e-7
VANISH_REL = 1e-3
EXPLODE_ABS = 1e3
PATIENCE = 5
HISTORY = 256  # snapshots kept for sparklines; older ones drop off


@dataclass(frozen=True)
class LayerStats:
    """One bar of the gradient-flow chart."""

    name: str  # module path ("conv1", "layers.3") or, per tensor, "conv1.weight"
    kind: str  # the module's class name ("Conv2d", "Linear", "LSTM")
    numel: int  # parameters in this layer
    grad_norm: float  # L2 norm over the layer's gradients (0.0 when no gradient reached it)
    weight_norm: float  # L2 norm over the layer's parameters
    # lr·|g|/|w|: the size of a plain-SGD step relative to the weights (≈1e-3 is healthy).
    # Exact for SGD without momentum; for momentum it under-states the step by up to
    # 1/(1-momentum), and for Adam (whose step per element is ~lr whatever |g| is) it is only an
    # indication of how much signal reaches the layer. nan when the weights are all zero.
    update_ratio: float
    has_grad: bool = True  # False: no parameter of the layer received a gradient (unused)


@dataclass(frozen=True)
class GradientSnapshot:
    """Everything the gradient-flow view draws for one observation; layers in forward order."""

    step: int | None
    lr: float | None
    layers: tuple[LayerStats, ...]
    total_norm: float  # the global gradient norm, the quantity clip_grad_norm_ clips
    warnings: tuple[str, ...] = ()  # warnings raised by this observation (new episodes only)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.layers]

    @property
    def grad_norms(self) -> list[float]:
        return [s.grad_norm for s in self.layers]


@dataclass
class _Group:
    name: str
    kind: str
    params: list[nn.Parameter]


def forward_order(model: nn.Module,
                  example_input: torch.Tensor | Sequence[torch.Tensor]) -> list[str]:
    """Names of the modules that hold parameters, in the order the forward pass first calls them.

    Registration order (what named_modules gives) is often not the forward order: the seed's
    residual net registers conv1, conv2, rblock1, rblock2 but runs conv1, rblock1, conv2,
    rblock2. One forward under no_grad in eval mode, hooks removed in ``finally``.
    """
    holders = {name: m for name, m in model.named_modules()
               if any(True for _ in m.parameters(recurse=False))}
    seen: list[str] = []
    handles = []

    def hook(name: str):
        def record(_module: nn.Module, _args: object) -> None:
            if name not in seen:
                seen.append(name)
        return record

    try:
        for name, module in holders.items():
            handles.append(module.register_forward_pre_hook(hook(name)))
        args = (tuple(example_input) if isinstance(example_input, (list, tuple))
                else (example_input,))
        # Eval mode: no BatchNorm statistics update, no dropout.
        with in_mode(model, training=False), torch.no_grad():
            model(*args)
    finally:
        for h in handles:
            h.remove()
    return seen + [n for n in holders if n not in seen]  # unused modules last


def _groups(model: nn.Module, per_tensor: bool, order: Sequence[str] | None) -> list[_Group]:
    groups: list[_Group] = []
    modules = dict(model.named_modules())
    names = list(order) if order is not None else list(modules)
    names += [n for n in modules if n not in names]
    for mod_name in names:
        module = modules[mod_name]
        own = [(pn, p) for pn, p in module.named_parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        kind = type(module).__name__
        if per_tensor:
            for pn, p in own:
                groups.append(_Group(f"{mod_name}.{pn}" if mod_name else pn, kind, [p]))
        else:
            groups.append(_Group(mod_name or kind, kind, [p for _, p in own]))
    return groups


def _norms(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """L2 norms as 0-d tensors, batched where torch allows it (sparse gradients do not)."""
    if not tensors:
        return []
    if all(not t.is_sparse for t in tensors) and hasattr(torch, "_foreach_norm"):
        with contextlib.suppress(RuntimeError, TypeError):
            return list(torch._foreach_norm(tensors))
    return [(t.coalesce().values() if t.is_sparse else t).float().norm() for t in tensors]


class GradientMonitor:
    """Reads per-layer gradient statistics on demand and keeps the warning counters.

    per_tensor=False gives one entry per parameter-holding module (weight and bias together:
    one bar per layer); True gives one per parameter tensor ("fc.weight", "fc.bias").
    example_input, when given, orders the layers as the forward pass calls them.
    """

    def __init__(self, model: nn.Module, *, example_input: torch.Tensor | None = None,
                 per_tensor: bool = False, vanish_abs: float = VANISH_ABS,
                 vanish_rel: float = VANISH_REL, explode_abs: float = EXPLODE_ABS,
                 patience: int = PATIENCE, history: int = HISTORY) -> None:
        self.per_tensor = per_tensor
        self.vanish_abs, self.vanish_rel = vanish_abs, vanish_rel
        self.explode_abs, self.patience = explode_abs, max(1, patience)
        self.history: deque[GradientSnapshot] = deque(maxlen=history)
        self.all_warnings: list[str] = []
        self._bind(model, forward_order(model, example_input) if example_input is not None
                   else None)

    def _bind(self, model: nn.Module, order: Sequence[str] | None) -> None:
        self._model = model
        self._groups = _groups(model, self.per_tensor, order)
        self._small_run: dict[str, int] = {g.name: 0 for g in self._groups}
        self._zero_run: dict[str, int] = {g.name: 0 for g in self._groups}
        self._flagged: dict[str, set[str]] = {g.name: set() for g in self._groups}

    @property
    def layer_names(self) -> list[str]:
        return [g.name for g in self._groups]

    def observe(self, model: nn.Module | None = None, lr: float | None = None, *,
                step: int | None = None, grad_scale: float = 1.0) -> GradientSnapshot:
        """Read the current gradients (call after backward, before zero_grad/step)."""
        if model is not None and model is not self._model:
            # A torch.compile wrapper shares the parameters; anything else is another model,
            # whose layers are read in registration order with fresh counters.
            inner = getattr(model, "_orig_mod", model)
            if inner is not self._model:
                self._bind(inner, None)
        params = [p for g in self._groups for p in g.params]
        with torch.no_grad():
            grads = [p.grad for p in params if p.grad is not None]
            norms = _norms([g.detach() for g in grads]) + _norms([p.detach() for p in params])
            if norms:
                dev = norms[0].device
                values = torch.stack([n.to(dev, torch.float32) for n in norms]).tolist()  # one sync
            else:
                values = []
        grad_vals = iter(values[:len(grads)])
        weight_vals = iter(values[len(grads):])
        scale = 1.0 / grad_scale if grad_scale else 1.0

        layers: list[LayerStats] = []
        total_sq = 0.0
        for group in self._groups:
            g_sq, w_sq, any_grad, numel = 0.0, 0.0, False, 0
            for p in group.params:
                numel += p.numel()
                w_sq += next(weight_vals) ** 2
                if p.grad is not None:
                    any_grad = True
                    g_sq += (next(grad_vals) * scale) ** 2
            g, w = math.sqrt(g_sq), math.sqrt(w_sq)
            total_sq += g_sq
            ratio = (lr * g / w) if (lr is not None and w > 0) else math.nan
            layers.append(LayerStats(group.name, group.kind, numel, g, w, ratio, any_grad))
        warnings = self._update_warnings(layers, step)
        snap = GradientSnapshot(step=step, lr=lr, layers=tuple(layers),
                                total_norm=math.sqrt(total_sq), warnings=tuple(warnings))
        self.history.append(snap)
        self.all_warnings.extend(warnings)
        return snap

    def _update_warnings(self, layers: list[LayerStats], step: int | None) -> list[str]:
        at = f" at step {step}" if step is not None else ""
        finite = [s.grad_norm for s in layers if math.isfinite(s.grad_norm)]
        largest = max(finite, default=0.0)
        out: list[str] = []
        for s in layers:
            flagged = self._flagged[s.name]
            g = s.grad_norm
            if not math.isfinite(g) or g > self.explode_abs:
                # Not finite is its own state: a layer already exploding that turns nan is news.
                state = "exploding" if math.isfinite(g) else "nonfinite"
                if state not in flagged:
                    what = f"norm {g:.3g} > {self.explode_abs:g}" if math.isfinite(g) else f"is {g}"
                    out.append(f"{s.name}: gradient {what} (exploding){at}; "
                               "try a lower --lr or --grad-clip 1.0")
                    flagged.add(state)
                if state == "exploding":
                    flagged.discard("nonfinite")
                self._small_run[s.name] = self._zero_run[s.name] = 0
                continue
            flagged.discard("exploding")
            flagged.discard("nonfinite")
            small = g < self.vanish_abs or (largest > 0 and g < self.vanish_rel * largest)
            self._small_run[s.name] = self._small_run[s.name] + 1 if small else 0
            self._zero_run[s.name] = self._zero_run[s.name] + 1 if g == 0.0 else 0
            if self._small_run[s.name] >= self.patience:
                if "vanishing" not in flagged:
                    n = self._small_run[s.name]
                    if self._zero_run[s.name] >= n:
                        out.append(f"{s.name}: gradient exactly 0 for {n} observations (dead: "
                                   f"no signal reaches it — dead ReLUs or an unused layer){at}")
                    else:
                        rel = g / largest if largest > 0 else 0.0
                        out.append(f"{s.name}: gradient norm {g:.2e} ({rel:.1e} × the largest "
                                   f"layer's) for {n} observations (vanishing){at}")
                    flagged.add("vanishing")
            elif not small:
                flagged.discard("vanishing")
        return out


# ---- the built-in lesson: a deep sigmoid MLP against the same net with ReLU -------------------

ACTIVATION_MODULES = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}


INITS = ("xavier", "default")


def deep_mlp(activation: str = "sigmoid", depth: int = 8, width: int = 32, *,
             in_features: int | None = None, out_features: int = 1, seed: int = 0,
             init: str = "xavier") -> nn.Sequential:
    """depth Linear layers (fc1 ... fcN), each but the last followed by the activation.

    The same seed gives the same weights whatever the activation, so the sigmoid and ReLU
    nets differ in nothing else. The global RNG is left as it was.

    init="xavier" (Glorot normal weights, zero biases) is the init designed for sigmoid/tanh,
    so the sigmoid net is not handicapped: its gradients still vanish, by ~1e-4 from fc8 to
    fc1 at depth 8, while the ReLU net's stay within a few ×. With init="default" (PyTorch's
    uniform ±1/√fan_in, random biases) the sigmoid net vanishes even harder (~1e-6) but the
    ReLU net's fc1 also gets ~60× less than fc8, because the biases come to dominate its
    shrinking activations — an initialisation lesson, kept apart from the activation one.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if activation not in ACTIVATION_MODULES:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATION_MODULES)}, "
                         f"got {activation!r}")
    if depth < 1 or width < 1:
        raise ValueError(f"depth and width must be ≥ 1 (got {depth}, {width})")
    in_features = in_features or width
    layers: list[tuple[str, nn.Module]] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(depth):
            fan_in = in_features if i == 0 else width
            fan_out = out_features if i == depth - 1 else width
            linear = nn.Linear(fan_in, fan_out)
            if init == "xavier":
                nn.init.xavier_normal_(linear.weight)
                nn.init.zeros_(linear.bias)
            layers.append((f"fc{i + 1}", linear))
            if i < depth - 1:
                layers.append((f"act{i + 1}", ACTIVATION_MODULES[activation]()))
    return nn.Sequential(OrderedDict(layers))


def synthetic_batch(n: int = 256, in_features: int = 32, seed: int = 0
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed regression batch: y = sin(x·v) for a random direction v."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, in_features, generator=gen)  # (n, F)
    v = torch.randn(in_features, 1, generator=gen) / math.sqrt(in_features)  # (F, 1)
    return x, torch.sin(x @ v)  # (n, F), (n, 1)


@dataclass(frozen=True)
class VanishingComparison:
    """Per-layer gradient norms of the same deep MLP with different activations.

    grad_norms[act][i] is the mean over the observed steps of layer i's gradient norm (fc1
    first); losses[act] the loss per step; warnings[act] what a GradientMonitor logged.
    """

    layers: tuple[str, ...]
    activations: tuple[str, ...]
    grad_norms: dict[str, list[float]]
    update_ratios: dict[str, list[float]]
    losses: dict[str, list[float]]
    warnings: dict[str, list[str]]
    steps: int
    lr: float
    depth: int
    width: int

    def first_over_last(self, activation: str) -> float:
        """fc1's gradient norm divided by the last layer's: ≪ 1 means the gradient vanished."""
        g = self.grad_norms[activation]
        return g[0] / g[-1] if g[-1] > 0 else math.nan


def compare_vanishing(steps: int = 10, *, activations: Iterable[str] = ("sigmoid", "relu"),
                      depth: int = 8, width: int = 32, lr: float = 0.01, batch: int = 256,
                      seed: int = 0, patience: int = 3, init: str = "xavier"
                      ) -> VanishingComparison:
    """Train each net a few SGD steps on one fixed batch, observing every step.

    A few steps (not one) so the numbers are not an accident of the initial weights; few enough
    (about 3 ms a step for both nets at depth 8, width 32, on one thread) to run when the view
    opens. lr 0.01 is the seed's; at 0.1 the sigmoid net's last layer (gradient ~3) overshoots
    and its loss goes up, which is a different lesson. Measured over seeds 0-2: fc1/fc8 is 7e-5 to 4e-4 for sigmoid and
    0.4 to 1.1 for ReLU; the sigmoid loss still falls (0.53 -> 0.41), through its last layers.
    """
    with torch_threads(1):
        return _compare(tuple(activations), steps, depth, width, lr, batch, seed, patience, init)


def _compare(activations: tuple[str, ...], steps: int, depth: int, width: int, lr: float,
             batch: int, seed: int, patience: int, init: str) -> VanishingComparison:
    x, y = synthetic_batch(batch, width, seed)  # (B, W), (B, 1)
    norms: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    losses: dict[str, list[float]] = {}
    warns: dict[str, list[str]] = {}
    names: tuple[str, ...] = ()
    for act in activations:
        model = deep_mlp(act, depth, width, seed=seed, init=init)
        params = list(model.parameters())
        monitor = GradientMonitor(model, patience=patience)
        loss_hist: list[torch.Tensor] = []
        taken: list[GradientSnapshot] = []
        for step in range(steps):
            for p in params:
                p.grad = None
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            taken.append(monitor.observe(model, lr, step=step))
            with torch.no_grad():
                # Plain SGD by hand: torch.optim's first use imports torch._dynamo (seconds),
                # too slow for a view that should open at once.
                for p in params:
                    p.add_(p.grad, alpha=-lr)
            loss_hist.append(loss.detach())
        names = tuple(monitor.layer_names)
        norms[act] = [sum(s.layers[i].grad_norm for s in taken) / len(taken)
                      for i in range(len(names))]
        ratios[act] = [sum(s.layers[i].update_ratio for s in taken) / len(taken)
                       for i in range(len(names))]
        losses[act] = torch.stack(loss_hist).tolist() if loss_hist else []
        warns[act] = list(monitor.all_warnings)
    return VanishingComparison(layers=names, activations=activations, grad_norms=norms,
                               update_ratios=ratios, losses=losses, warnings=warns, steps=steps,
                               lr=lr, depth=depth, width=width)
