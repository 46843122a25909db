"""Diagnoses for the classic mistakes, and the tracer's promises: meta only, hooks and modes
removed, train/eval mode restored — also when the forward fails."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tui_nn.shapes import inspect_model, meta_copy


class FlattenNet(nn.Module):
    """conv 5×5 → flatten → Linear(in_features): the seed's pattern with a chosen size."""

    def __init__(self, in_features: int = 320, channels: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 20, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(in_features, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))  # (B, 20, (H−4)/2, (W−4)/2)
        x = F.dropout(x.flatten(1), 0.1, self.training)  # shape kept: provenance follows
        return self.fc(x)


class RowsMixSamples(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 20, 5)
        self.fc = nn.Linear(320, 10)

    def forward(self, x):
        return self.fc(self.conv(x).view(-1, 320))  # wrong unless conv gives 20×4×4


class ReadsValues(nn.Module):
    """Data-dependent Python: cannot run on meta."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        if x.abs().max().item() > 1e6:
            x = x / 2
        return self.fc(x)


class WithValueReader(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Linear(4, 8)
        self.odd = ReadsValues()
        self.post = nn.Linear(4, 2)

    def forward(self, x):
        return self.post(self.odd(self.pre(x)))


def test_linear_after_flatten_with_wrong_in_features():
    # 32×32: conv → 28, pool → 14; 20·14·14 = 3920 features, the Linear wants 320
    result = inspect_model(FlattenNet(320), "1x32x32")
    d = result.diagnosis
    assert (d.path, d.kind) == ("fc", "linear_features")
    assert d.message == "Linear expects 320 features but gets 20 × 14 × 14 = 3920"
    assert d.fixes[0] == "use nn.Linear(3920, 10)"
    # 20·h·h = 320 ⇔ h = 4 ⇔ ⌊(s − 4)/2⌋ = 4 ⇔ s ∈ {12, 13}
    assert d.fixes[1] == "feed 1×12×12 input"
    assert result.solver.working == [12, 13]
    (check,) = result.checks
    assert check.text == "Linear(320) ← 20 × 14 × 14 = 3920 ✗ expects 320"


def test_flatten_provenance_survives_shape_keeping_ops():
    (check,) = inspect_model(FlattenNet(3920), "1x32x32").checks
    assert check.ok and check.flatten_op == "Tensor.flatten" and check.factors == (20, 14, 14)


def test_conv_channel_mismatch_on_the_model_input():
    result = inspect_model(FlattenNet(320, channels=1), "3x12x12")
    d = result.diagnosis
    assert (d.path, d.kind) == ("conv", "channels")
    assert d.message == "Conv2d expects 1 input channel but gets 3 (input 1×3×12×12)"
    assert d.fixes == ["feed 1×12×12 input", "use nn.Conv2d(3, 20, kernel_size=5)"]
    assert d.got == [(1, 3, 12, 12)] and d.expected == "N×1×H×W"
    assert [r.path for r in result.all_rows if r.status == "error"] == ["conv"]


def test_conv_channel_mismatch_between_layers():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(16, 4, 3))
    d = inspect_model(model, "3x10x10").diagnosis
    assert d.path == "2" and d.kind == "channels"
    assert d.fixes == ["use nn.Conv2d(8, 4, kernel_size=3) to take the 8 channels the layer "
                       "before gives"]


def test_input_too_small_for_a_kernel():
    # 8×8: conv1 5×5 → 4, pool → 2, conv2 needs 5×5
    result = inspect_model("cnn", "1x8x8")
    d = result.diagnosis
    assert (d.path, d.kind) == ("conv2", "too_small")
    assert d.message == ("Conv2d with kernel 5×5 needs at least 5×5 per channel but gets 2×2 "
                         "(input 1×10×2×2)")
    assert d.fixes[-1] == "feed 1×28×28 input"


def test_functional_pool_too_small():
    class Tiny(nn.Module):
        def forward(self, x):
            return F.max_pool2d(x, 4)

    result = inspect_model(Tiny(), "1x1x3x3")
    d = result.diagnosis
    assert d.kind == "too_small" and d.path == "max_pool2d"
    assert d.message == "F.max_pool2d would make 0×0 from 3×3 (input 1×1×3×3)"


def test_view_that_cannot_fit():
    # mlp does x.view(-1, 784): 32·32 = 1024 is no multiple of 784
    result = inspect_model("mlp", "1x32x32")
    d = result.diagnosis
    assert (d.path, d.type, d.kind) == ("view", "Tensor.view", "view")
    assert d.message == "view(-1, 784) gets 1×1×32×32 = 1024 values, not a multiple of 784"
    assert d.fixes == ["feed 1×28×28 input"]
    assert "is invalid for input of size 1024" in d.error


def test_rows_that_mix_samples_fail_the_check_without_an_exception():
    # 12×12 → conv → 20×8×8 = 1280 values = 4 rows of 320: runs, but the batch became 4
    result = inspect_model(RowsMixSamples(), "1x12x12")
    assert result.diagnosis is None and not result.ok
    (check,) = result.checks
    assert not check.ok and check.factors is None
    assert "batch of 1 became 4" in check.problem
    assert check.fix == ("flatten per sample with x.view(x.size(0), -1) and use "
                         "nn.Linear(1280, 10), or feed 1×8×8 input")


def test_embedding_needs_integer_input():
    d = inspect_model("rnn", "1x5", dtype="float32").diagnosis
    assert d.kind == "dtype" and d.path == "emb"
    assert inspect_model("rnn", "1x5").ok  # the zoo says int64


def test_rnn_feature_mismatch():
    d = inspect_model("lstm", "50x3").diagnosis
    assert d.message == "LSTM expects 4 features per step but gets 3 (input 1×50×3)"
    assert d.fixes == ["use nn.LSTM(3, 16)"]


def test_missing_channel_dimension():
    d = inspect_model(FlattenNet(), "12x12").diagnosis
    assert d.kind == "rank"
    assert d.fixes == ["feed 1×12×12 input (channels first)"]


def test_module_that_cannot_run_on_meta_falls_back_to_cpu_and_says_so():
    result = inspect_model(WithValueReader(), "4")
    assert result.ok, result.diagnosis
    odd = next(r for r in result.all_rows if r.path == "odd")
    assert odd.device == "cpu" and odd.output_shapes == [(1, 4)]
    assert all(r.device == "meta" for r in result.all_rows if r.path != "odd")
    assert any("odd (ReadsValues) ran on CPU" in n and "item()" in n for n in result.notes)
    assert result.all_rows[-1].path == "post" and result.all_rows[-1].output_shapes == [(1, 2)]


def test_hooks_removed_and_modes_restored_even_when_the_forward_fails():
    with torch.device("meta"):
        model = FlattenNet(999)  # wrong on purpose
    model.train()
    model.pool.eval()  # a mixed state must come back exactly
    before = {name: m.training for name, m in model.named_modules()}
    result = inspect_model(model, "1x32x32")  # already on meta: traced in place
    assert result.diagnosis is not None
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks
        assert "forward" not in m.__dict__
    assert {name: m.training for name, m in model.named_modules()} == before
    assert torch._C._len_torch_function_stack() == 0
    assert torch._C._len_torch_dispatch_stack() == 0
    # no leftover hook adds rows or changes the answer the second time
    again = inspect_model(model, "1x32x32")
    assert again.diagnosis.text == result.diagnosis.text
    assert [r.path for r in again.all_rows] == [r.path for r in result.all_rows]


def test_cpu_model_is_traced_as_a_meta_copy():
    model = FlattenNet(320)
    weight = model.fc.weight
    ptr = weight.data_ptr()
    model.fc.weight.requires_grad_(False)
    result = inspect_model(model, "1x12x12")
    assert result.ok
    assert model.fc.weight is weight and weight.data_ptr() == ptr and weight.device.type == "cpu"
    assert not any(m._forward_hooks for m in model.modules())
    assert result.totals.params_frozen == 320 * 10
    assert result.totals.params_trainable == 20 * 25 + 20 + 10


def test_meta_copy_never_touches_the_weights():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    model[0].weight.requires_grad_(False)
    copy = meta_copy(model)
    assert all(p.device.type == "meta" for p in copy.parameters())
    assert all(b.device.type == "meta" for b in copy.buffers())
    assert copy[0].weight.requires_grad is False and copy[0].bias.requires_grad is True
    assert model[0].weight.device.type == "cpu"


def test_a_model_too_big_for_memory_traces_on_meta():
    with torch.device("meta"):
        # 100k × 100k = 10¹⁰ parameters: 40 GB if it were ever allocated
        model = nn.Sequential(nn.Linear(100_000, 100_000), nn.ReLU(), nn.Linear(100_000, 10))
    result = inspect_model(model, "100000")
    assert result.ok
    assert result.totals.params == 100_000 * 100_000 + 100_000 + 100_000 * 10 + 10
    assert result.totals.mult_adds == 100_000 * 100_000 + 100_000 * 10


def test_shared_module_counted_once_in_totals():
    layer = nn.Linear(4, 4)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    result = inspect_model(model, "4")
    assert result.totals.params == 20
    linear_rows = [r for r in result.all_rows if r.type == "Linear"]
    assert [r.repeat for r in linear_rows] == [False, True]


def test_row_params_count_a_subtree_once_whether_weights_are_tied_or_not():
    """Rows' params come from one walk summing children; tied weights or a module used in two
    places would be summed twice there, so those models count each module's own set."""
    class Tied(nn.Module):
        def __init__(self, tie: bool) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.body = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
            self.head = nn.Linear(4, 10, bias=False)
            self.body[1].requires_grad_(False)
            if tie:
                self.head.weight = self.embed.weight

        def forward(self, x):
            return self.head(self.body(self.embed(x)))

    for tie, total in ((False, 40 + 20 + 20 + 40), (True, 40 + 20 + 20)):
        result = inspect_model(Tied(tie), "1x3:int64")
        rows = {r.path: (r.params_trainable, r.params_frozen) for r in result.all_rows}
        assert rows[""] == (total - 20, 20)
        assert rows["body"] == (20, 20)
        assert result.totals.params == total


def test_unused_modules_are_listed():
    class Unused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(2, 2)
            self.spare = nn.Linear(2, 2)

        def forward(self, x):
            return self.used(x)

    result = inspect_model(Unused(), "2")
    assert result.uncalled == ["spare"]
    assert any("spare" in n for n in result.notes)


def test_several_inputs():
    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.fc = nn.Linear(8, 1)

        def forward(self, tokens, features):
            return self.fc(torch.cat([self.emb(tokens), features], dim=-1))

    result = inspect_model(Pair(), ["1x3:int64", "1x3x4"])
    assert result.ok, result.diagnosis
    assert result.input_dtypes == ["int64", "float32"]
    cat = next(r for r in result.all_rows if r.type == "torch.cat")
    assert cat.output_shapes == [(1, 3, 8)]
    assert [f.text for f in cat.arithmetic] == ["dim2_out = sum of the inputs' sizes = 4 + 4 = 8"]


def test_to_dict_is_json_ready():
    import json

    data = json.loads(json.dumps(inspect_model("lenet", "1x28x28").to_dict()))
    assert data["ok"] is False
    assert data["diagnosis"]["path"] == "fc1"
    assert data["checks"][0]["text"] == "Linear(400) ← 16 × 4 × 4 = 256 ✗ expects 400"
    row = data["rows"][1]
    assert set(row) >= {"path", "type", "input_shapes", "output_shapes", "params_trainable",
                        "params_frozen", "mult_adds", "output_bytes", "arithmetic"}


def test_nn_flatten_in_a_sequential():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Dropout(), nn.Linear(4 * 6 * 6, 2))
    result = inspect_model(model, "1x8x8")
    (check,) = result.checks
    # 8 − 3 + 1 = 6: 4 × 6 × 6 = 144, through the Dropout
    assert check.text == "Linear(144) ← 4 × 6 × 6 = 144 ✓"
    assert (check.flatten_op, check.flatten_path) == ("Flatten", "1")
    # torch's own Flatten is one row, not a row plus its internal Tensor.flatten
    assert [r.type for r in result.all_rows] == ["Sequential", "Conv2d", "Flatten", "Dropout",
                                                 "Linear"]


def test_subclasses_with_their_own_forward_are_judged_by_what_they_do():
    class LayerNorm2d(nn.LayerNorm):  # torchvision's ConvNeXt does this
        def forward(self, x):  # (B, C, H, W): normalise over C
            return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    class SamePadConv(nn.Conv2d):  # pads itself: the plain formula would say 6, not 8
        def forward(self, x):
            return super().forward(F.pad(x, (1, 1, 1, 1)))

    model = nn.Sequential(SamePadConv(3, 4, 3), LayerNorm2d(4))
    result = inspect_model(model, "3x8x8")
    assert result.ok, result.diagnosis
    conv = next(r for r in result.all_rows if r.path == "0")
    assert conv.output_shapes == [(1, 4, 8, 8)]
    assert conv.arithmetic == []  # 8 − 3 + 1 = 6 ≠ 8: no explanation beats a wrong one


def test_modules_used_only_through_their_weights_are_not_called_unused():
    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
            self.blocks = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8)])

        def forward(self, x):
            x, _ = self.mha(x, x, x)  # uses mha.out_proj.weight without calling out_proj
            for block in self.blocks:  # the ModuleList itself is never called
                x = block(x)
            return x

    result = inspect_model(Attn(), "1x5x8")
    assert result.ok and result.uncalled == []
