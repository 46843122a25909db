"""The zoo's model names without importing torch: the CLI checks a name before it opens the app
(importing the zoo takes seconds; the app's first frame must not wait for it). A test keeps
this list equal to the registry's."""

from __future__ import annotations

import difflib

ZOO_NAMES = ("linear", "logistic", "diabetes", "curve", "mlp", "cnn", "resnet", "lenet",
             "inception", "rnn", "rnn-seq", "lstm", "gru", "gan")


def looks_like_source(name: str) -> bool:
    """path/to/model.py:Class, model.py or package.module:factory rather than a zoo name."""
    return ":" in name or name.endswith(".py")


def unknown_model_message(name: str, names=ZOO_NAMES) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"unknown model '{name}'.{hint} Available: {', '.join(names)}"
