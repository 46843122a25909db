"""Honest counts: `mult_adds` from torch's formula table, `flops` = 2 × mult_adds, and every
op that ran without a formula listed in `not_counted` (never a silent 0)."""

from __future__ import annotations

import torch
from torch import nn

from tui_nn.shapes import inspect_model
from tui_nn.shapes.uncounted import summary


class ScaledMatmul(torch.autograd.Function):
    """A custom autograd.Function: the ops inside its forward are seen and counted."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a.mm(b) * 2.0  # (B, 16) @ (16, 8) -> (B, 8)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad.mm(b.t()) * 2.0, a.t().mm(grad) * 2.0


class Spectral(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(16, 16))
        self.v = nn.Parameter(torch.randn(16, 8))

    def forward(self, x):  # x: (B, 16)
        spectrum = torch.fft.rfft(x, dim=-1).abs()  # (B, 9)
        mixed = torch.einsum("bi,ij->bj", x, self.w)  # (B, 16)
        out = ScaledMatmul.apply(mixed, self.v)  # (B, 8)
        return out.sum(-1) + spectrum.sum(-1)  # (B,)


def test_fft_einsum_and_a_custom_function_are_counted_or_listed():
    result = inspect_model(Spectral(), (4, 16))
    # einsum runs as a bmm (4·16·16) and the Function's mm (4·16·8): both have formulas.
    assert result.totals.mult_adds == 4 * 16 * 16 + 4 * 16 * 8
    assert result.totals.flops == 2 * result.totals.mult_adds
    listed = {n.op: n for n in result.not_counted}
    fft = listed["aten._fft_r2c"]
    assert fft.category == "other" and fft.calls == 1 and fft.output_shape == (4, 9)
    assert listed["aten.abs"].category == "elementwise"
    assert listed["aten.mul"].output_shape == (4, 8)  # the Function's × 2.0
    assert listed["aten.sum"].category == "reduction" and listed["aten.sum"].calls == 2
    assert result.not_counted[0].op == "aten._fft_r2c"  # 'other' first: it may hide work
    # Views and copies do no arithmetic: not listed.
    assert not any(op in listed for op in ("aten.view", "aten.t", "aten.expand",
                                           "aten.unsqueeze", "aten.permute"))
    data = result.to_dict()
    assert data["totals"]["flops"] == 2 * data["totals"]["mult_adds"]
    assert {"op": "aten._fft_r2c", "category": "other", "calls": 1,
            "output_shape": [4, 9]} in data["not_counted"]
    assert all(r["flops"] == 2 * r["mult_adds"] for r in data["rows"])


def test_resnet_lists_its_relus_adds_and_pools():
    result = inspect_model("resnet")
    listed = {n.op: (n.category, n.calls) for n in result.not_counted}
    assert listed["aten.relu"] == ("elementwise", 6)
    assert listed["aten.add"] == ("elementwise", 2)  # the two residual sums
    assert listed["aten.max_pool2d_with_indices"] == ("pool", 2)
    assert "2× aten.add (elementwise, 1×16×12×12)" in summary(result.not_counted)


def test_batch_norm_is_a_norm():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.LayerNorm(6))
    listed = {n.op: n.category for n in inspect_model(model, "3x8x8").not_counted}
    assert "norm" in {listed.get("aten._native_batch_norm_legit_no_training"),
                      listed.get("aten.native_batch_norm")}
    assert listed["aten.native_layer_norm"] == "norm"
