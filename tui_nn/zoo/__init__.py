"""The seed curriculum as a model zoo (no UI imports here)."""

from tui_nn.zoo.registry import (MODELS, ModelSpec, TrainDefaults, UnknownModelError,
                                 get_model_spec, list_models)

__all__ = ["MODELS", "ModelSpec", "TrainDefaults", "UnknownModelError", "get_model_spec",
           "list_models"]
