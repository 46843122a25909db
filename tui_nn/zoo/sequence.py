"""Recurrent models: the char RNN (hello -> ohlol) and RNN/LSTM/GRU sequence classifiers."""

from __future__ import annotations

import torch
from torch import nn


class CharRNN(nn.Module):
    """Embedding -> RNN -> Linear per time step; learns to map 'hello' to 'ohlol'.

    The seed notes one-hot the characters and reshape the output to (seq_len·batch, hidden);
    here inputs are character indices (B, T) and the output stays (B, T, vocab) so the
    loss can flatten it.
    """

    def __init__(self, vocab_size: int = 4, embedding_size: int = 10, hidden_size: int = 8,
                 num_layers: int = 2) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab_size, embedding_size)
        self.rnn = nn.RNN(embedding_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T) int64 -> (B, T, vocab)
        x = self.emb(x)  # (B, T, E)
        x, _ = self.rnn(x)  # (B, T, H)
        return self.fc(x)  # (B, T, vocab)


class SequenceClassifier(nn.Module):
    """Reads a (B, T, features) sequence and classifies it from the last hidden state.

    With cell='rnn' the gradient reaching the first time steps shrinks geometrically, so on the
    long-range task (the label is the first symbol) it stays at chance as T grows; 'lstm' and
    'gru' gate the state and carry the first symbol to the end.
    """

    CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

    def __init__(self, cell: str = "lstm", input_size: int = 4, hidden_size: int = 16,
                 num_classes: int = 4, gate_init: str = "remember",
                 memory_span: int = 50) -> None:
        super().__init__()
        self.cell = cell
        self.rnn = self.CELLS[cell](input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)
        # 16 units, not more: with 32 the plain RNN sometimes bridges 80 steps and the lesson
        # blurs. The gated cells start out remembering (see remember_init); 'pytorch' keeps
        # PyTorch's own gate init, under which they forget as fast as the plain RNN.
        if gate_init == "remember":
            remember_init(self, memory_span)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F) -> (B, classes)
        out, _ = self.rnn(x)  # (B, T, H)
        return self.fc(out[:, -1])  # (B, classes)


def remember_init(model: nn.Module, max_length: int, *, seed: int = 0) -> None:
    """Gate biases that start out remembering ("chrono" initialisation, Tallec & Ollivier
    2018): for each hidden unit b = log(u), u ~ U(1, max_length - 1), on the LSTM's forget gate
    (input gate -b) and on the GRU's update gate.

    PyTorch initialises every gate bias near 0, so gates start half open: an LSTM keeps about
    0.5^T of what it saw T steps ago and a GRU likewise, which on this task is no better than
    the plain RNN. Biasing the gates toward "keep" is the standard practice the gates were
    designed for (Gers et al. 2000 set the forget bias to 1; chrono spreads the units' memory
    spans up to the sequence length). A plain RNN has no gate and is left as it is.
    """
    gen = torch.Generator().manual_seed(seed)
    span = max(float(max_length), 3.0)
    with torch.no_grad():
        for rnn in (m for m in model.modules() if isinstance(m, (nn.LSTM, nn.GRU))):
            h = rnn.hidden_size
            for layer in range(rnn.num_layers):
                b_ih = getattr(rnn, f"bias_ih_l{layer}", None)
                b_hh = getattr(rnn, f"bias_hh_l{layer}", None)
                if b_ih is None or b_hh is None:
                    continue
                u = torch.rand(h, generator=gen) * (span - 2) + 1  # (H,) in [1, T-1)
                b = torch.log(u)
                if isinstance(rnn, nn.LSTM):  # gate order i, f, g, o
                    b_ih[h:2 * h] = b
                    b_ih[:h] = -b
                    b_hh[:2 * h] = 0.0
                else:  # GRU gate order r, z, n; h' = (1 - z)·n + z·h, so z near 1 keeps h
                    b_ih[h:2 * h] = b
                    b_hh[h:2 * h] = 0.0
