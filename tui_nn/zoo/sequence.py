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

    def __init__(self, cell: str = "lstm", input_size: int = 4, hidden_size: int = 32,
                 num_classes: int = 4) -> None:
        super().__init__()
        self.cell = cell
        self.rnn = self.CELLS[cell](input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F) -> (B, classes)
        out, _ = self.rnn(x)  # (B, T, H)
        return self.fc(out[:, -1])  # (B, classes)
