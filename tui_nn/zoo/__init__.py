"""The seed curriculum as a model zoo (no UI imports here).

The registry (and torch) load on first use, so that ``tui_nn.zoo.names`` stays instant."""

__all__ = ["MODELS", "ModelSpec", "TrainDefaults", "UnknownModelError", "get_model_spec",
           "list_models"]


def __getattr__(name: str):
    if name in __all__:
        from tui_nn.zoo import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'tui_nn.zoo' has no attribute {name!r}")
