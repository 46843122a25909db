"""The questions the seed notes keep asking — why 320? why 512? why 16·5·5? where does 1408
come from? — answered by the inspector, checked against numbers worked out by hand."""

from __future__ import annotations

import pytest

from tui_nn.shapes import inspect_model
from tui_nn.zoo import MODELS

# Worked out by hand from the layer sizes (weights + biases).
ZOO_PARAMS = {
    "linear": 1 + 1,
    "logistic": 1 + 1,
    "diabetes": (8 * 6 + 6) + (6 * 4 + 4) + (4 * 1 + 1),  # 87
    "curve": (1 * 10 + 10) + (10 * 1 + 1),  # 31
    "mlp": (784 * 512 + 512) + (512 * 256 + 256) + (256 * 128 + 128) + (128 * 64 + 64)
    + (64 * 10 + 10),  # 575050
    "cnn": (1 * 10 * 25 + 10) + (10 * 20 * 25 + 20) + (320 * 10 + 10),  # 8490
    "resnet": (1 * 16 * 25 + 16) + (16 * 32 * 25 + 32) + 2 * (16 * 16 * 9 + 16)
    + 2 * (32 * 32 * 9 + 32) + (512 * 10 + 10),  # 41514
    "lenet": (6 * 25 + 6) + (6 * 16 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84)
    + (84 * 10 + 10),  # 61706
    # InceptionA(c): 1×1 c→16, 1×1 c→16 + 5×5 16→24, 1×1 c→16 + 3×3 16→24 + 3×3 24→24, 1×1 c→24
    "inception": (1 * 10 * 25 + 10) + (88 * 20 * 25 + 20) + (1408 * 10 + 10)
    + sum(c * 16 + 16 + c * 16 + 16 + 16 * 24 * 25 + 24 + c * 16 + 16 + 16 * 24 * 9 + 24
          + 24 * 24 * 9 + 24 + c * 24 + 24 for c in (10, 20)),  # 97298
    # Embedding 4×10; RNN layer 1: 8·10 + 8·8 + 2·8, layer 2: 8·8 + 8·8 + 2·8; Linear 8→4
    "rnn": 4 * 10 + (8 * 10 + 8 * 8 + 16) + (8 * 8 + 8 * 8 + 16) + (8 * 4 + 4),  # 380
    "rnn-seq": (16 * 4 + 16 * 16 + 2 * 16) + (16 * 4 + 4),  # 420
    "lstm": 4 * (16 * 4 + 16 * 16 + 2 * 16) + (16 * 4 + 4),  # 1476
    "gru": 3 * (16 * 4 + 16 * 16 + 2 * 16) + (16 * 4 + 4),  # 1124
    # G: Linear 64→3136 (no bias) + BN1d(3136) + ConvT 64→32 4×4 (no bias) + BN(32)
    # + ConvT 32→1 4×4; D: conv 1→32 4×4 + conv 32→64 4×4 (no bias) + BN(64) + Linear 3136→1
    "gan": (64 * 3136 + 2 * 3136 + 64 * 32 * 16 + 2 * 32 + 32 * 16 + 1)
    + (32 * 16 + 32 + 32 * 64 * 16 + 2 * 64 + 3136 + 1),  # 276898
}


def test_the_numbers_from_the_brief():
    assert ZOO_PARAMS == {"linear": 2, "logistic": 2, "diabetes": 87, "curve": 31,
                          "mlp": 575050, "cnn": 8490, "resnet": 41514, "lenet": 61706,
                          "inception": 97298, "rnn": 380, "rnn-seq": 420, "lstm": 1476,
                          "gru": 1124, "gan": 276898}
    assert set(ZOO_PARAMS) == set(MODELS)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_zoo_model_traces_with_hand_counted_parameters(name):
    result = inspect_model(name)
    assert result.ok, result.diagnosis
    assert result.totals.params == ZOO_PARAMS[name]
    assert result.totals.params_trainable == ZOO_PARAMS[name]
    assert result.totals.param_bytes == 4 * ZOO_PARAMS[name]  # float32
    assert result.all_rows[0].depth == 0 and result.all_rows[0].params == ZOO_PARAMS[name]


def _row(result, path, nth=0):
    return [r for r in result.all_rows if r.path == path][nth]


def _texts(row):
    return [f.text for f in row.arithmetic]


def test_cnn_320_is_20_by_4_by_4():
    result = inspect_model("cnn", "1x28x28")
    conv1 = _row(result, "conv1")
    assert conv1.output_shapes == [(1, 10, 24, 24)]
    assert _texts(conv1) == [
        "H_out = ⌊(H_in + 2p − d(k−1) − 1)/s⌋ + 1 = ⌊(28 + 0 − 4 − 1)/1⌋ + 1 = 24",
        "W_out = ⌊(W_in + 2p − d(k−1) − 1)/s⌋ + 1 = ⌊(28 + 0 − 4 − 1)/1⌋ + 1 = 24"]
    pool1, pool2 = _row(result, "pooling", 0), _row(result, "pooling", 1)
    assert pool1.repeat is False and pool2.repeat is True  # the same MaxPool2d, called twice
    # 24 → 12: ⌊(24 + 0 − 1 − 1)/2⌋ + 1
    assert _texts(pool1)[0].endswith("⌊(24 + 0 − 1 − 1)/2⌋ + 1 = 12")
    # 12 → 8 then 8 → 4
    assert _texts(_row(result, "conv2"))[0].endswith("⌊(12 + 0 − 4 − 1)/1⌋ + 1 = 8")
    assert _texts(pool2)[0].endswith("⌊(8 + 0 − 1 − 1)/2⌋ + 1 = 4")
    view = _row(result, "view")
    assert (view.kind, view.type, view.detail) == ("function", "Tensor.view", "view(1, -1)")
    assert view.input_shapes == [(1, 20, 4, 4)] and view.output_shapes == [(1, 320)]
    (check,) = result.checks
    assert check.text == "Linear(320) ← 20 × 4 × 4 = 320 ✓"
    assert (check.path, check.factors, check.ok) == ("fc", (20, 4, 4), True)


def test_resnet_512_is_32_by_4_by_4():
    result = inspect_model("resnet", "1x28x28")
    (check,) = result.checks
    assert check.text == "Linear(512) ← 32 × 4 × 4 = 512 ✓"
    block = _row(result, "rblock1")
    assert block.depth == 1 and not block.leaf
    inner = _row(result, "rblock1.conv1")
    assert inner.depth == 2
    # padding 1 keeps the size: ⌊(12 + 2 − 2 − 1)/1⌋ + 1 = 12
    assert _texts(inner)[0].endswith("⌊(12 + 2 − 2 − 1)/1⌋ + 1 = 12")
    assert _row(result, "rblock2").output_shapes == [(1, 32, 4, 4)]


def test_lenet_400_is_16_by_5_by_5_at_32():
    result = inspect_model("lenet", "1x32x32")
    assert result.ok
    (check,) = result.checks
    assert check.text == "Linear(400) ← 16 × 5 × 5 = 400 ✓"
    pools = [r for r in result.all_rows if r.type == "F.max_pool2d"]
    assert [p.output_shapes for p in pools] == [[(1, 6, 14, 14)], [(1, 16, 5, 5)]]
    # the functional pool gets its arithmetic too: ⌊(10 + 0 − 1 − 1)/2⌋ + 1 = 5
    assert _texts(pools[1])[0].endswith("⌊(10 + 0 − 1 − 1)/2⌋ + 1 = 5")
    flatten = _row(result, "flatten")
    assert (flatten.type, flatten.detail) == ("torch.flatten", "flatten(x, 1)")


def test_lenet_at_28_is_diagnosed_with_a_fix():
    result = inspect_model("lenet", "1x28x28")
    assert not result.ok
    d = result.diagnosis
    assert (d.path, d.type, d.kind) == ("fc1", "Linear", "linear_features")
    assert d.text == ("Linear expects 400 features but gets 16 × 4 × 4 = 256: "
                      "use nn.Linear(256, 120), or feed 1×32×32 input")
    assert d.got == [(1, 256)]
    # the table is kept up to the failing layer, which is marked
    assert [r.path for r in result.all_rows] == ["", "conv1", "max_pool2d", "conv2",
                                                 "max_pool2d", "flatten", "fc1"]
    (failing,) = [r for r in result.all_rows if r.status == "error"]
    assert failing.path == "fc1" and failing.input_shapes == [(1, 256)]
    assert failing.output_shapes == []
    assert result.all_rows[0].status == "unfinished"
    (check,) = result.checks
    assert check.text == "Linear(400) ← 16 × 4 × 4 = 256 ✗ expects 400" and not check.ok


def test_inception_1408_is_88_by_4_by_4():
    result = inspect_model("inception", "1x28x28")
    (check,) = result.checks
    assert check.text == "Linear(1408) ← 88 × 4 × 4 = 1408 ✓"
    cat = _row(result, "incep2.cat")
    # 88 = 16 + 24 + 24 + 24 branch channels
    assert _texts(cat) == ["C_out = sum of the inputs' sizes = 16 + 24 + 24 + 24 = 88"]
    assert cat.input_shapes == [(1, 16, 4, 4), (1, 24, 4, 4), (1, 24, 4, 4), (1, 24, 4, 4)]
    avg = _row(result, "incep1.avg_pool2d")
    assert _texts(avg)[0] == "H_out = ⌊(H_in + 2p − k)/s⌋ + 1 = ⌊(12 + 2 − 3)/1⌋ + 1 = 12"


def test_mlp_view_784_is_1_by_28_by_28():
    (check,) = inspect_model("mlp").checks
    assert check.text == "Linear(784) ← 1 × 28 × 28 = 784 ✓"


def test_solver_finds_the_sizes_that_work():
    import torch

    from tui_nn.shapes import solve_input_size
    from tui_nn.zoo.sources import load_model

    lenet = load_model("lenet").model
    result = solve_input_size(lenet, [(1, 1, 28, 28)], [torch.float32])
    # conv5 → pool2 → conv5 → pool2 must end at 5: ⌊(⌊(s − 4)/2⌋ − 4)/2⌋ = 5 ⇔ s ∈ 32..35
    assert result.working == [32, 33, 34, 35] and result.nearest == 32 and result.complete
    cnn = load_model("cnn").model
    result = solve_input_size(cnn, [(1, 1, 28, 28)], [torch.float32])
    assert result.working == [28, 29, 30, 31] and result.nearest == 28
    assert result.ranges() == [(28, 31)]


def test_solver_is_skipped_for_token_inputs():
    result = inspect_model("rnn", solve=True)
    assert result.solver is None


def test_depth_limits_rows_but_not_totals():
    full = inspect_model("inception")
    shallow = inspect_model("inception", depth=1)
    assert max(r.depth for r in shallow.rows) == 1
    assert len(shallow.rows) < len(full.rows) == len(shallow.all_rows)
    assert shallow.totals == full.totals


def test_mult_adds_by_hand():
    result = inspect_model("cnn")
    # conv1: 10·24·24 outputs × (1·5·5) = 144000; conv2: 20·8·8 × (10·5·5) = 320000; fc 320·10
    assert _row(result, "conv1").mult_adds == 144_000
    assert _row(result, "conv2").mult_adds == 320_000
    assert _row(result, "fc").mult_adds == 3_200
    assert result.totals.mult_adds == 144_000 + 320_000 + 3_200
    # activation memory: float32 outputs of the leaf layers (the view shares its input's
    # memory): conv1 5760 + pool 1440 + conv2 1280 + pool 320 + fc 10 values
    assert result.totals.activation_bytes == 4 * (5760 + 1440 + 1280 + 320 + 10)
    assert result.totals.input_bytes == 4 * 28 * 28


def test_batch_is_optional_and_scales_the_batch_numbers():
    one = inspect_model("cnn", "1x28x28")
    many = inspect_model("cnn", "64x1x28x28")
    assert one.input_shapes == [(1, 1, 28, 28)] and many.input_shapes == [(64, 1, 28, 28)]
    assert many.totals.mult_adds == 64 * one.totals.mult_adds
    assert many.totals.activation_bytes == 64 * one.totals.activation_bytes
    assert many.totals.params == one.totals.params
