"""Issue 14, the inspector half: an input guessed from the first layer when none is given, and
fixes that are right — each suggested fix is applied and the model inspected again."""

from __future__ import annotations

import re

import pytest
import torch.nn.functional as F
from torch import nn

from tui_nn.shapes import InspectUsageError, inspect_model
from tui_nn.shapes.infer import guess_input


class OneChannelCNN(nn.Module):
    """The seed's basic CNN as a user writes it: nothing declares the input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.fc = nn.Linear(320, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 10, 12, 12)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 20, 4, 4)
        return self.fc(x.view(x.size(0), -1))  # (B, 320) -> (B, 10)


class FcDefinedFirst(nn.Module):
    """The Linear is defined before the conv but called after it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8 * 4 * 4, 2)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.conv(x), 4).flatten(1))


class NoFlatten(nn.Module):
    def __init__(self, in_features: int = 4 * 28 * 28, flatten: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)  # (B, 4, 28, 28)
        self.flatten = nn.Flatten() if flatten else nn.Identity()
        self.fc = nn.Linear(in_features, 32)

    def forward(self, x):
        return self.fc(self.flatten(F.relu(self.conv(x))))


def test_one_channel_net_is_inspected_at_1x28x28_and_says_why():
    result = inspect_model(OneChannelCNN())
    assert result.ok
    assert result.input_shapes == [(1, 1, 28, 28)]
    assert "assumed 1×28×28: first layer (Conv2d) takes 1 channel; smallest size that fits: 28" \
        in result.notes


def test_the_solver_picks_the_size_a_flatten_needs():
    lenet = nn.Sequential(nn.Conv2d(1, 6, 5), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 10))
    result = inspect_model(lenet)
    assert result.ok and result.input_shapes == [(1, 1, 32, 32)]
    assert "smallest size that fits: 32" in result.notes[0]


def test_global_pooling_net_takes_a_usual_size_not_1x1():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 10))
    result = inspect_model(net)
    assert result.ok and result.input_shapes == [(1, 3, 32, 32)]
    assert "takes 3 channels; smallest size that fits: 3; 32 is a usual one" in result.notes[0]


@pytest.mark.parametrize("model, shape, dtype", [
    (nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), (1, 784), "float32"),
    (nn.Sequential(nn.Embedding(50, 4), nn.Flatten(), nn.Linear(32, 2)), (1, 8), "int64"),
    (nn.Sequential(nn.Conv1d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 30, 1)), (1, 2, 32),
     "float32"),
    (nn.Sequential(nn.Conv3d(1, 2, 3), nn.AdaptiveAvgPool3d(1), nn.Flatten()), (1, 1, 32, 32, 32),
     "float32"),
])
def test_features_token_ids_and_other_ranks_come_from_the_first_layer(model, shape, dtype):
    result = inspect_model(model)
    assert result.ok, result.diagnosis
    assert result.input_shapes == [shape] and result.input_dtypes == [dtype]


def test_rnn_gets_steps_of_its_input_size():
    class Seq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(5, 7, batch_first=True)
            self.fc = nn.Linear(7, 2)

        def forward(self, x):
            return self.fc(self.rnn(x)[0][:, -1])  # (B, T, 7) -> (B, 2)

    result = inspect_model(Seq())
    assert result.ok and result.input_shapes == [(1, 8, 5)]


def test_a_later_defined_layer_is_tried_when_the_first_defined_does_not_run():
    result = inspect_model(FcDefinedFirst())
    assert result.ok and result.input_shapes[0][1] == 3


def test_no_guess_when_no_layer_says_and_the_message_names_no_channel_count():
    assert guess_input(nn.Sequential(nn.ReLU())) is None
    with pytest.raises(InspectUsageError) as info:
        inspect_model(nn.Sequential(nn.ReLU()))
    assert "3x224x224" not in str(info.value) and "--input" in str(info.value)


def test_a_model_that_fits_no_size_is_still_inspected_with_the_diagnosis():
    result = inspect_model(NoFlatten())
    assert not result.ok and result.input_shapes == [(1, 1, 28, 28)]
    assert "no square size in 1–256 fits" in result.notes[0]
    assert result.diagnosis.kind == "flatten"


# --- the two wrong fixes, applied ---------------------------------------------------------

def test_channels_last_input_suggests_channels_first_and_that_passes():
    result = inspect_model("cnn", "28x28x1", solve=True)
    d = result.diagnosis
    assert d.kind == "channels"
    assert not any("feed 1×28×1" in f for f in d.fixes)
    (suggested,) = re.findall(r"did you mean (\S+)\?", d.fix)
    assert suggested == "1x28x28"
    assert inspect_model("cnn", suggested).ok
    # The solver searched the layout that was meant: 1×28×28 passes, not 'none'.
    assert result.solver is not None and 28 in result.solver.working
    assert result.solver.sample_shape == (1, 28, 28)


def test_batched_channels_last_three_channel_input():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    d = inspect_model(net, "4x32x32x3").diagnosis
    (suggested,) = re.findall(r"did you mean (\S+)\?", d.fix)
    assert suggested == "4x3x32x32"
    assert inspect_model(net, suggested).ok


def test_channels_wrong_but_not_last_keeps_the_old_fixes():
    d = inspect_model(OneChannelCNN(), "3x28x28").diagnosis
    assert d.fixes[0] == "feed 1×28×28 input"
    assert inspect_model(OneChannelCNN(), "1x28x28").ok


def test_missing_flatten_suggests_a_flatten_and_the_flatten_passes():
    d = inspect_model(NoFlatten(), "1x28x28").diagnosis
    assert (d.path, d.kind) == ("fc", "flatten")
    assert d.fixes == ["add nn.Flatten() (or x.flatten(1)) before fc"]
    assert "use nn.Linear(28" not in d.fix
    assert "4 × 28 × 28 = 3136" in d.message
    assert inspect_model(NoFlatten(flatten=True), "1x28x28").ok


def test_missing_flatten_with_the_wrong_size_names_both_changes():
    d = inspect_model(NoFlatten(in_features=100), "1x28x28").diagnosis
    assert d.fixes == ["add nn.Flatten() (or x.flatten(1)) before fc and use "
                       "nn.Linear(3136, 32)"]
    assert inspect_model(NoFlatten(in_features=3136, flatten=True), "1x28x28").ok


def test_a_linear_on_tokens_with_the_wrong_width_is_not_a_missing_flatten():
    net = nn.Sequential(nn.Linear(16, 8))
    d = inspect_model(net, "1x10x12").diagnosis
    assert d.kind == "linear_features" and d.fixes == ["use nn.Linear(12, 8)"]
    assert inspect_model(nn.Sequential(nn.Linear(12, 8)), "1x10x12").ok


def test_a_batch_of_two_channels_last_images_keeps_its_batch():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    d = inspect_model(net, [(2, 28, 28, 1)]).diagnosis  # batched: 2 images, channels last
    assert re.findall(r"did you mean (\S+)\?", d.fix) == ["2x1x28x28"]
