"""The seed model zoo: name -> factory, default input shape, default dataset, training defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from tui_nn.zoo import gan, regression, sequence, vision
from tui_nn.zoo.building import building_on
from tui_nn.zoo.names import DESCRIPTIONS, unknown_model_message


@dataclass(frozen=True)
class TrainDefaults:
    """Hyperparameters the seed notes use for a model; CLI flags override them."""

    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "sgd"
    momentum: float = 0.0


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    factory: Callable[[], nn.Module] = field(repr=False, compare=False)
    input_shape: tuple[int, ...]  # per sample, without the batch dimension
    default_dataset: str
    defaults: TrainDefaults
    input_dtype: torch.dtype = torch.float32
    lesson: str = ""  # what the seed notes want a learner to see in this model
    variable_length: bool = False  # recurrent: any sequence length T is fine
    # Classifiers: the seed's class count, and the factory takes num_classes= (and, for image
    # models, in_channels=) so the engine can size the model to a dataset. None: fixed output.
    classes: int | None = None
    # A training step of its own (engine/plugins.py) for a model that is not "one forward,
    # one loss": "module:Class" of the step plugin (a name: the zoo never imports the engine).
    step: str | None = None

    def build(self, num_classes: int | None = None, in_channels: int | None = None) -> nn.Module:
        """The seed model, or one sized for a dataset (num_classes outputs, in_channels input)."""
        kwargs: dict[str, int] = {}
        if num_classes is not None and self.classes is not None:
            kwargs["num_classes"] = num_classes
        if in_channels is not None and self.classes is not None and len(self.input_shape) == 3:
            kwargs["in_channels"] = in_channels
        return self.factory(**kwargs)

    def parameter_count(self) -> int:
        # Built on the meta device: counting never allocates the weights.
        with building_on("meta"):
            model = self.factory()
        return sum(p.numel() for p in model.parameters())


_IMAGE = TrainDefaults(epochs=3, batch_size=64, lr=0.01, optimizer="momentum", momentum=0.5)
_SEQ = TrainDefaults(epochs=15, batch_size=64, lr=0.005, optimizer="adam")

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec("linear", DESCRIPTIONS["linear"],
                  regression.LinearModel, (1,), "line",
                  TrainDefaults(epochs=2000, batch_size=3, lr=0.01),
                  lesson="after training, x=4 predicts 8"),
        ModelSpec("logistic", DESCRIPTIONS["logistic"],
                  regression.LogisticRegressionModel, (1,), "hours",
                  TrainDefaults(epochs=1000, batch_size=3, lr=0.1),
                  lesson="the decision boundary falls between 2 and 3 hours"),
        ModelSpec("diabetes", DESCRIPTIONS["diabetes"],
                  regression.DiabetesModel, (8,), "diabetes",
                  TrainDefaults(epochs=100, batch_size=32, lr=0.1)),
        ModelSpec("curve", DESCRIPTIONS["curve"],
                  regression.CurveNet, (1,), "curve",
                  TrainDefaults(epochs=150, batch_size=100, lr=0.2)),
        ModelSpec("mlp", DESCRIPTIONS["mlp"],
                  vision.SoftmaxMLP, (1, 28, 28), "digits", _IMAGE, classes=10),
        ModelSpec("cnn", DESCRIPTIONS["cnn"],
                  vision.BasicCNN, (1, 28, 28), "digits", _IMAGE, classes=10,
                  lesson="320 = 20 channels × 4 × 4 after two conv+pool stages"),
        ModelSpec("resnet", DESCRIPTIONS["resnet"],
                  vision.ResidualCNN, (1, 28, 28), "digits", _IMAGE, classes=10,
                  lesson="512 = 32 × 4 × 4; skip connections fight vanishing gradients"),
        ModelSpec("lenet", DESCRIPTIONS["lenet"],
                  vision.LeNet, (1, 32, 32), "digits",
                  # The tutorial's momentum 0.9: at 0.5 LeNet sits on its 2.30 plateau for
                  # hundreds of steps before it starts to learn.
                  TrainDefaults(epochs=3, batch_size=64, lr=0.01, optimizer="momentum",
                                momentum=0.9), classes=10,
                  lesson="400 = 16 × 5 × 5 only for 32×32 input; 28×28 digits are padded"),
        ModelSpec("inception", DESCRIPTIONS["inception"],
                  vision.InceptionNet, (1, 28, 28), "digits", _IMAGE, classes=10,
                  lesson="1408 = 88 × 4 × 4; 88 = 16 + 24 + 24 + 24 branch channels"),
        ModelSpec("rnn", DESCRIPTIONS["rnn"],
                  sequence.CharRNN, (5,), "hello",
                  TrainDefaults(epochs=15, batch_size=1, lr=0.1, optimizer="adam"),
                  input_dtype=torch.int64),
        ModelSpec("rnn-seq", DESCRIPTIONS["rnn-seq"],
                  lambda **kw: sequence.SequenceClassifier("rnn", **kw), (50, 4), "longrange",
                  _SEQ, classes=4,
                  variable_length=True,
                  lesson="vanishing gradients: accuracy stays near chance (25%) for long sequences"),
        ModelSpec("lstm", DESCRIPTIONS["lstm"],
                  lambda **kw: sequence.SequenceClassifier("lstm", **kw), (50, 4), "longrange",
                  _SEQ, classes=4,
                  variable_length=True),
        ModelSpec("gru", DESCRIPTIONS["gru"],
                  lambda **kw: sequence.SequenceClassifier("gru", **kw), (50, 4), "longrange",
                  _SEQ, classes=4,
                  variable_length=True),
        ModelSpec("gan", DESCRIPTIONS["gan"],
                  gan.GAN, (1, 28, 28), "digits",
                  TrainDefaults(epochs=5, batch_size=64, lr=2e-4, optimizer="adam"),
                  lesson="two networks, two optimizers: D learns real vs fake, G learns to "
                         "fool D; watch both losses and the generated digits",
                  step="tui_nn.engine.gan_step:GANStep"),
    ]
}


class UnknownModelError(KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def get_model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(unknown_model_message(name, tuple(MODELS))) from None


def list_models() -> list[ModelSpec]:
    return list(MODELS.values())
