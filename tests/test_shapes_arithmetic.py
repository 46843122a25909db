"""Conv / pool / pad size arithmetic, checked against numbers worked out by hand and against
what PyTorch itself produces."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tui_nn.shapes.arithmetic import (conv_formulas, conv_transpose_formulas, module_formulas,
                                      pool_formulas)


def test_conv_formula_text_with_numbers_filled_in():
    (h,) = conv_formulas((28,), kernel=5)
    # 28 + 2·0 − 1·(5−1) − 1 = 23; ⌊23/1⌋ + 1 = 24
    assert h.text == "L_out = ⌊(L_in + 2p − d(k−1) − 1)/s⌋ + 1 = ⌊(28 + 0 − 4 − 1)/1⌋ + 1 = 24"


def test_conv2d_rows_name_h_and_w():
    h, w = module_formulas(nn.Conv2d(1, 10, kernel_size=5), (1, 1, 28, 28))
    assert h.text == "H_out = ⌊(H_in + 2p − d(k−1) − 1)/s⌋ + 1 = ⌊(28 + 0 − 4 − 1)/1⌋ + 1 = 24"
    assert w.text.startswith("W_out = ⌊(W_in + 2p − d(k−1) − 1)/s⌋ + 1")


def test_padding_stride_dilation_all_show_up():
    # k=3, p=2, s=2, d=2 on 32: 32 + 4 − 2·2 − 1 = 31; ⌊31/2⌋ + 1 = 16
    (h, w) = module_formulas(nn.Conv2d(3, 8, 3, stride=2, padding=2, dilation=2), (1, 3, 32, 20))
    assert h.numbers == "⌊(32 + 4 − 4 − 1)/2⌋ + 1" and h.value == 16
    # 20 + 4 − 4 − 1 = 19; ⌊19/2⌋ + 1 = 10
    assert w.value == 10


def test_padding_same_keeps_the_size():
    (l,) = module_formulas(nn.Conv1d(2, 2, 5, padding="same"), (1, 2, 17))
    assert l.value == 17 and "same" in l.text


def test_conv3d_names_d_h_w():
    d, h, w = module_formulas(nn.Conv3d(1, 1, 3), (1, 1, 8, 9, 10))
    assert (d.dim, h.dim, w.dim) == ("D", "H", "W")
    assert (d.value, h.value, w.value) == (6, 7, 8)


def test_maxpool_halves():
    # MaxPool2d(2): stride defaults to the kernel; 24 + 0 − 1·(2−1) − 1 = 22; ⌊22/2⌋ + 1 = 12
    h, _ = module_formulas(nn.MaxPool2d(2), (1, 10, 24, 24))
    assert h.numbers == "⌊(24 + 0 − 1 − 1)/2⌋ + 1" and h.value == 12


def test_avgpool_has_no_dilation_term():
    # AvgPool2d(3, stride=1, padding=1) keeps 12: ⌊(12 + 2 − 3)/1⌋ + 1 = 12
    h, _ = module_formulas(nn.AvgPool2d(3, stride=1, padding=1), (1, 10, 12, 12))
    assert h.text == "H_out = ⌊(H_in + 2p − k)/s⌋ + 1 = ⌊(12 + 2 − 3)/1⌋ + 1 = 12"


def test_ceil_mode_rounds_up():
    # ⌈(7 + 0 − 1 − 1)/2⌉ + 1 = ⌈2.5⌉ + 1 = 4 (floor would give 3)
    (l,) = pool_formulas("max", (7,), kernel=2, stride=2, ceil_mode=True)
    assert l.value == 4 and l.numbers.startswith("⌈")


def test_conv_transpose_doubles():
    # (7 − 1)·2 − 2·1 + 1·(4 − 1) + 0 + 1 = 12 − 2 + 3 + 1 = 14
    (h,) = conv_transpose_formulas((7,), kernel=4, stride=2, padding=1)
    assert h.text == ("L_out = (L_in − 1)·s − 2p + d(k−1) + op + 1 = "
                      "(7 − 1)·2 − 2 + 3 + 0 + 1 = 14")


def test_padding_layer():
    # ZeroPad2d((left=1, right=2, top=3, bottom=4)): H 10 + 3 + 4 = 17, W 10 + 1 + 2 = 13
    h, w = module_formulas(nn.ZeroPad2d((1, 2, 3, 4)), (1, 1, 10, 10))
    assert (h.numbers, h.value) == ("10 + 3 + 4", 17)
    assert (w.numbers, w.value) == ("10 + 1 + 2", 13)


def test_adaptive_pool_says_the_size_is_fixed():
    h, w = module_formulas(nn.AdaptiveAvgPool2d((1, 1)), (1, 512, 7, 7))
    assert (h.value, w.value) == (1, 1) and "adaptive" in h.text


def test_too_small_input_goes_below_one():
    (h, _) = module_formulas(nn.Conv2d(1, 1, 5), (1, 1, 3, 3))
    assert h.value < 1


def test_non_spatial_layers_have_no_formula():
    assert module_formulas(nn.Linear(3, 4), (1, 3)) == []


# Every formula agrees with what PyTorch computes, over many random layer settings.
layer_settings = st.fixed_dictionaries({
    "size": st.integers(8, 40), "k": st.integers(1, 5), "s": st.integers(1, 3),
    "p": st.integers(0, 2), "d": st.integers(1, 2), "ceil": st.booleans(),
})


@settings(max_examples=60, deadline=None)
@given(layer_settings, st.sampled_from(["conv", "tconv", "max", "avg"]))
def test_formulas_match_pytorch(cfg, kind):
    k, s, p, d = cfg["k"], cfg["s"], cfg["p"], cfg["d"]
    p = min(p, k // 2)  # pools refuse padding above half the kernel
    if kind == "conv":
        layer = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
    elif kind == "tconv":
        layer = nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, dilation=d)
    elif kind == "max":
        layer = nn.MaxPool2d(k, stride=s, padding=p, dilation=d, ceil_mode=cfg["ceil"])
    else:
        layer = nn.AvgPool2d(k, stride=s, padding=p, ceil_mode=cfg["ceil"])
    layer = layer.to("meta")
    shape = (1, 1, cfg["size"], cfg["size"] + 3)
    expected = [f.value for f in module_formulas(layer, shape)]
    if min(expected) < 1:
        with pytest.raises(RuntimeError, match="too small|greater than"):
            layer(torch.empty(shape, device="meta"))
        return
    out = layer(torch.empty(shape, device="meta"))
    assert tuple(out.shape[2:]) == tuple(expected)
