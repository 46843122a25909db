"""`tui-nn plot WHAT`: the insight views as plain terminal output (plotext text plots and
tables), for a terminal without the app, a pipe or a log.

    activations   sigmoid, tanh, ReLU, leaky ReLU, PReLU, softplus, GELU (--derivatives adds dy/dx)
    landscape     MSE(w) on the seed's x = 1, 2, 3 / y = 2, 4, 6 and where GD, SGD and
                  mini-batch SGD walk on it, with the path as a table
    vanishing     per-layer gradient norms of a deep sigmoid MLP against the same net with ReLU

Exit codes: 0 drawn, 2 a usage error (unknown WHAT, bad number). Output is colourless when
stdout is not a terminal, and every series has its own marker letter so the plots read
without colour.
"""

from __future__ import annotations

import math
import shutil
import sys
import traceback

from tui_nn.commands.tables import text_table
from tui_nn.fmt import fmt_loss
from tui_nn.textsafe import error

EXIT_OK, EXIT_USAGE = 0, 2
CHOICES = ("activations", "landscape", "vanishing")

_METHOD_MARKERS = {"gd": "G", "sgd": "S", "minibatch": "M"}


def run_plot(what: str, *, derivatives: bool = False, lr: float = 0.01, epochs: int = 100,
             steps: int = 10, width: int | None = None, height: int | None = None,
             color: bool | None = None, debug: bool = False) -> int:
    """Draw one view on stdout and return the exit code."""
    what = (what or "").strip().lower()
    if what not in CHOICES:
        error(f"unknown plot {what!r}: choose one of {', '.join(CHOICES)}")
        return EXIT_USAGE
    problem = _check_numbers(lr, epochs, steps, width, height)
    if problem:
        error(problem)
        return EXIT_USAGE
    cols, rows = shutil.get_terminal_size(fallback=(100, 30))
    width = width or max(60, min(cols, 120))
    height = height or max(20, min(rows - 4, 30))
    color = sys.stdout.isatty() if color is None else color
    try:
        if what == "activations":
            text = activations_text(derivatives, width, height, color)
        elif what == "landscape":
            text = landscape_text(lr, epochs, width, height, color)
        else:
            text = vanishing_text(steps, width)
    except Exception as exc:  # noqa: BLE001 - a bug of ours: one line unless --debug
        if debug:
            traceback.print_exc()
        error(f"plotting {what} failed: {type(exc).__name__}: {exc} "
              "(run with --debug for the traceback)")
        return 1
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def _check_numbers(lr: float, epochs: int, steps: int, width: int | None,
                   height: int | None) -> str | None:
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        return f"--lr must be a number > 0 (got {lr})"
    if epochs < 1 or epochs > 100_000:
        return f"--epochs must be between 1 and 100000 (got {epochs})"
    if steps < 1 or steps > 1000:
        return f"--steps must be between 1 and 1000 (got {steps})"
    if width is not None and width < 40:
        return f"--width must be at least 40 columns (got {width})"
    if height is not None and height < 12:
        return f"--height must be at least 12 lines (got {height})"
    return None


def _figure(width: int, height: int, color: bool):
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    if not color:
        plt.theme("clear")
    return plt


def _built(plt, color: bool) -> str:
    text = plt.build()
    return text if color else plt.uncolorize(text)


# ---- activations -----------------------------------------------------------------------------

def activations_text(derivatives: bool, width: int, height: int, color: bool) -> str:
    from tui_nn.insight.activations import activation_curves

    curves = activation_curves(points=max(2 * width + 1, 101))  # ~2 points per column
    parts = [_curves_plot(curves, "y", "activation functions f(x)", width, height, color)]
    if derivatives:
        parts.append(_curves_plot(curves, "dy", "derivatives f'(x) (autograd)", width, height,
                                  color))
    rows = [[c.name, c.formula, f"{c.max_slope:.3g}"] for c in curves]
    parts.append(text_table(["function", "formula", "max slope"], rows).rstrip("\n"))
    parts.append("A deep stack multiplies one slope per layer: sigmoid's is at most 0.25, so "
                 "8 layers shrink the gradient by 0.25^7 ≈ 6e-5 or more "
                 "(`tui-nn plot vanishing`).")
    return "\n\n".join(parts) + "\n"


def _curves_plot(curves, field: str, title: str, width: int, height: int, color: bool) -> str:
    from tui_nn.insight.activations import MARKERS  # torch: not at import (cli lists CHOICES)

    plt = _figure(width, height, color)
    # Drawn last is drawn on top: reversed, so relu and sigmoid are not hidden under gelu.
    for c in reversed(curves):
        plt.plot(c.x, getattr(c, field), label=c.name, marker=MARKERS.get(c.name, "·"))
    plt.title(title)
    plt.xlabel("x")
    return _built(plt, color)


# ---- loss landscape --------------------------------------------------------------------------

def landscape_text(lr: float, epochs: int, width: int, height: int, color: bool) -> str:
    from tui_nn.insight.landscape import METHOD_LABELS, descent_paths, mse_curve

    curve = mse_curve()
    paths = descent_paths(lr=lr, epochs=epochs, seed=0)
    plt = _figure(width, height, color)
    plt.plot(curve.w, curve.loss, label="MSE(w), y = w·x", marker="·")
    for method, path in paths.items():
        epoch_path = path.per_epoch()
        # Points that stay on the drawn w range (a too-large lr diverges off the chart).
        pts = [(w, loss) for w, loss in zip(epoch_path.w[:-1], epoch_path.loss[:-1])
               if curve.w[0] <= w <= curve.w[-1]]
        w_end, _, loss_end = path.final
        mark = _METHOD_MARKERS[method]
        if pts:
            plt.scatter([p[0] for p in pts], [p[1] for p in pts], marker=mark.lower())
        if curve.w[0] <= w_end <= curve.w[-1] and math.isfinite(loss_end):
            plt.scatter([w_end], [loss_end], marker=mark,
                        label=f"{METHOD_LABELS[method]}: w={w_end:.4f}")
    plt.title(f"MSE against w on x = 1, 2, 3 / y = 2, 4, 6 (start w = 1, lr = {lr:g})")
    plt.xlabel("w")
    parts = [_built(plt, color), _path_table(paths, epochs)]
    return "\n\n".join(parts) + "\n"


def _path_table(paths: dict, epochs: int) -> str:
    shown = sorted({0, 1, 2, 3, 5, 10, 20, 50, epochs} | {e for e in (100, 200, 500, 1000)
                                                         if e < epochs})
    shown = [e for e in shown if e <= epochs]
    per_epoch = {m: p.per_epoch() for m, p in paths.items()}
    headers = ["epoch"] + [h for m in paths for h in (f"{m} w", f"{m} loss")]
    rows = []
    for e in shown:
        row = [str(e)]
        for m in paths:
            p = per_epoch[m]
            row += [fmt_loss(p.w[e]), fmt_loss(p.loss[e])]
        rows.append(row)
    updates = ", ".join(f"{m} {p.updates_per_epoch}" for m, p in paths.items())
    return (text_table(headers, rows).rstrip("\n")
            + f"\nupdates per epoch: {updates} (the seed's by-hand loops; loss = MSE over "
              "all three points)")


# ---- vanishing gradients ---------------------------------------------------------------------

def vanishing_text(steps: int, width: int) -> str:
    """Text bars on a log scale: plotext's bars cannot do log axes, and two series of bars
    are indistinguishable without colour."""
    from tui_nn.insight.gradflow import compare_vanishing

    cmp = compare_vanishing(steps=steps)
    acts = cmp.activations
    values = [v for a in acts for v in cmp.grad_norms[a] if v > 0 and math.isfinite(v)]
    lo = math.floor(math.log10(min(values))) if values else -8
    hi = math.ceil(math.log10(max(values))) if values else 1
    name_w = max(len(n) for n in cmp.layers)
    bar_w = max(10, (width - name_w - 4 - 12 * len(acts)) // len(acts))
    span = max(hi - lo, 1)
    lines = [f"Gradient norm per layer, depth {cmp.depth} × width {cmp.width} MLP, same "
             f"weights, {cmp.steps} SGD steps (lr {cmp.lr:g}) on one batch; bars are log10 "
             f"from 1e{lo} to 1e{hi}.", ""]
    header = " " * name_w + "  " + "  ".join(f"{a:<{bar_w + 10}}" for a in acts)
    lines.append(header.rstrip())
    for i, name in enumerate(cmp.layers):
        cells = []
        for a in acts:
            g = cmp.grad_norms[a][i]
            filled = 0 if g <= 0 else round((math.log10(g) - lo) / span * bar_w)
            cells.append(f"{g:8.1e}  " + ("█" * max(filled, 0)).ljust(bar_w))
        lines.append(f"{name:<{name_w}}  " + "  ".join(cells).rstrip())
    lines.append("")
    for a in acts:
        ratio = cmp.first_over_last(a)
        verdict = "vanished" if ratio < 1e-2 else "flows"
        lines.append(f"{a:>8}: {cmp.layers[0]} / {cmp.layers[-1]} = {ratio:.1e} ({verdict}); "
                     f"loss {cmp.losses[a][0]:.3f} -> {cmp.losses[a][-1]:.3f}")
    warned = [(a, w) for a in acts for w in cmp.warnings[a]]
    if warned:
        lines.append("")
        lines += [f"warning ({a}): {w}" for a, w in warned]
    return "\n".join(lines) + "\n"
