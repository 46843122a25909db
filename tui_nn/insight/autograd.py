"""The autograd graph behind a loss, as a tree: what the seed prints one level at a time with
``loss.grad_fn.next_functions[0][0]``, unfolded all the way down to the parameters.

Each node is a backward function (``MseLossBackward0``, ``AddmmBackward0``...); its children
are its ``next_functions``. The leaves are ``AccumulateGrad`` nodes, where a gradient lands in
a tensor's ``.grad``: they are labelled with the parameter's name and shape when a model is
given. A node reached a second time (a tensor used twice: residual connections, RNN weights
at every time step) is shown once in full and then as a reference, so the tree stays finite
and small; ``max_nodes`` caps it for very large graphs.

Build the tree while the graph is alive: after ``backward()`` without ``retain_graph`` the
nodes still exist but their saved tensors are freed, which does not matter here (only names
and structure are read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

from tui_nn.fmt import format_shape


@dataclass
class GradNode:
    """One node of the tree; children are in next_functions order."""

    id: int  # stable within one tree: the order nodes were first visited (0 = the loss)
    name: str  # the backward function's class name, e.g. "ConvolutionBackward0"
    param: str | None = None  # AccumulateGrad of a named parameter: "conv1.weight"
    shape: tuple[int, ...] | None = None  # the accumulated tensor's shape
    children: list["GradNode"] = field(default_factory=list)
    ref: bool = False  # already shown earlier in the tree; children omitted here
    truncated: bool = False  # max_nodes was reached: children omitted here

    @property
    def label(self) -> str:
        if self.name == "AccumulateGrad":
            what = self.param or "tensor"
            shape = format_shape(self.shape) if self.shape is not None else "?"
            text = f"AccumulateGrad {what} ({shape})"
        else:
            text = self.name
        if self.ref:
            text += f"  [see #{self.id}]"
        elif self.truncated:
            text += "  [...]"
        return text

    def walk(self) -> Iterator["GradNode"]:
        """Every node in the tree, depth first (references included, not followed)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def find(self, name: str) -> list["GradNode"]:
        return [n for n in self.walk() if n.name == name and not n.ref]

    def leaves(self) -> list["GradNode"]:
        return [n for n in self.walk() if n.name == "AccumulateGrad" and not n.ref]


@dataclass(frozen=True)
class GradTree:
    root: GradNode | None  # None: the loss has no grad_fn (nothing requires grad)
    nodes: int  # distinct backward functions found (each counted once)
    truncated: bool  # the cap was hit: some branches are cut


def grad_fn_tree(loss: torch.Tensor, model: nn.Module | None = None, *, max_nodes: int = 300,
                 names: dict[int, str] | None = None) -> GradTree:
    """Walk ``loss.grad_fn`` through next_functions, depth first, visiting each node once.

    names maps id(tensor) -> name for AccumulateGrad labels; by default it comes from
    model.named_parameters(). Iterative, so a 1000-step RNN graph cannot hit the recursion
    limit; cost grows with the graph (about 0.1 ms for the basic CNN's 15 nodes).
    """
    if names is None:
        names = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
    fn = loss.grad_fn
    if fn is None:
        return GradTree(None, 0, False)
    seen: dict[object, GradNode] = {}
    truncated = False

    def make(f: object) -> GradNode:
        node = GradNode(id=len(seen), name=type(f).__name__)
        var = getattr(f, "variable", None)  # AccumulateGrad holds the leaf tensor
        if isinstance(var, torch.Tensor):
            node.param = names.get(id(var))
            node.shape = tuple(var.shape)
        seen[f] = node
        return node

    root = make(fn)
    stack: list[tuple[object, GradNode]] = [(fn, root)]
    while stack:
        f, node = stack.pop()
        pending = []
        for nxt, _ in getattr(f, "next_functions", ()):
            if nxt is None:  # an input that needs no gradient
                continue
            if nxt in seen:
                first = seen[nxt]
                node.children.append(GradNode(first.id, first.name, first.param, first.shape,
                                              ref=True))
                continue
            if len(seen) >= max_nodes:
                node.truncated = truncated = True
                break
            child = make(nxt)
            node.children.append(child)
            pending.append((nxt, child))
        stack.extend(reversed(pending))  # visit the first next_function first
    return GradTree(root, len(seen), truncated)


# ---- a loss for any model, for the app's autograd view ----------------------------------------

@dataclass(frozen=True)
class ExampleLoss:
    loss: torch.Tensor  # a scalar with its graph alive
    what: str  # how it was made, e.g. "mse_loss(out, y) on a 2×1 batch"


def _task_of(dataset: str | None) -> str | None:
    if not dataset:
        return None
    from tui_nn.data.registry import DATASETS

    info = DATASETS.get(dataset)
    if info is not None:
        return info.task
    return "classification" if dataset.startswith("longrange") else None


def example_loss(model: nn.Module, sample_shape: tuple[int, ...], *,
                 dtype: torch.dtype = torch.float32, dataset: str | None = None,
                 batch: int = 2, seed: int = 0) -> ExampleLoss:
    """One forward of ``batch`` random samples and the loss the trainer would use for
    ``dataset``'s task (engine.tasks), with random targets: only the graph matters.

    Without a known task: cross-entropy for (B, C) outputs with C > 1 (a classifier), MSE
    against zeros otherwise. Integer inputs (token ids) are drawn below the first
    Embedding's vocabulary size. Runs on the CPU, in train mode restored afterwards.
    """
    from tui_nn.data import tasks

    gen = torch.Generator().manual_seed(seed)
    shape = (batch, *sample_shape)
    if dtype.is_floating_point:
        x = torch.randn(shape, generator=gen).to(dtype)
    else:
        emb = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
        high = emb.num_embeddings if emb is not None else 2
        x = torch.randint(0, high, shape, generator=gen, dtype=dtype)
    out = model(x)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model returned {type(out).__name__}, not a tensor")
    out = out.float()
    task = _task_of(dataset)
    dims = format_shape(shape)
    if task == "regression" or task is None and not (out.dim() == 2 and out.shape[1] > 1):
        y = torch.zeros_like(out) if task is None else torch.randn(out.shape, generator=gen)
        kind, call = "regression", "mse_loss(out, y)"
    elif task == "binary":
        y = torch.randint(0, 2, out.shape, generator=gen).float()
        from tui_nn.data.model_fit import ends_in_probabilities
        kind, call = (("binary", "binary_cross_entropy(out, y)") if ends_in_probabilities(out)
                      # logits: the loss applies the sigmoid
                      else ("binary-logits", "binary_cross_entropy_with_logits(out, y)"))
    elif task == "sequence" or out.dim() == 3:
        y = torch.randint(0, out.shape[-1], out.shape[:-1], generator=gen)
        kind, call = "sequence", "cross_entropy(out per step, y)"
    else:
        y = torch.randint(0, out.shape[1], (out.shape[0],), generator=gen)
        kind, call = "classification", "cross_entropy(out, y)"
    return ExampleLoss(tasks.loss_mean(kind, out, y), f"{call} on a {dims} batch")
