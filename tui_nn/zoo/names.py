"""The zoo's model names and descriptions without importing torch: the CLI checks a name before it
opens the app, and the app lists the zoo in its first frame (importing the zoo takes seconds).
A test keeps the names equal to the registry's."""

from __future__ import annotations

import difflib

# name -> its one line, in the zoo's order: the registry's specs take theirs from here, and the
# app lists the zoo from here before torch has loaded (its first frame must not wait seconds).
DESCRIPTIONS: dict[str, str] = {
    "linear": "Linear(1,1) regression, MSE + SGD: learns y = 2x",
    "logistic": "Linear(1,1) + sigmoid, BCE: P(pass | hours studied)",
    "diabetes": "8→6→4→1 MLP with sigmoids, BCE (multiple-dimension input)",
    "curve": "1→10→1 ReLU net fitting y = x² + noise, MSE + SGD lr 0.2",
    "mlp": "784→512→256→128→64→10 softmax MLP (ReLU, cross-entropy)",
    "cnn": "basic CNN: 2× (conv 5×5 + maxpool 2) → Linear(320, 10)",
    "resnet": "residual CNN: conv + ResidualBlock ×2 → Linear(512, 10)",
    "lenet": "LeNet-5 on 1×32×32: conv 6, conv 16 → 400→120→84→10",
    "inception": "small GoogLeNet: conv + InceptionA (88 ch) ×2 → Linear(1408, 10)",
    "rnn": "char RNN (Embedding → 2-layer RNN → Linear): 'hello' → 'ohlol'",
    "rnn-seq": "plain RNN sequence classifier on the long-range task (fails as T grows)",
    "lstm": "LSTM sequence classifier on the long-range task (gates keep the memory)",
    "gru": "GRU sequence classifier on the long-range task (gates keep the memory)",
    "gan": "small DCGAN: generator 64→(64,7,7)→28×28 vs a 2-conv discriminator",
}
ZOO_NAMES = tuple(DESCRIPTIONS)


def looks_like_source(name: str) -> bool:
    """path/to/model.py:Class, model.py or package.module:factory rather than a zoo name."""
    return ":" in name or name.endswith(".py")


def unknown_model_message(name: str, names=ZOO_NAMES) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"unknown model '{name}'.{hint} Available: {', '.join(names)}"
