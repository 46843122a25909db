"""The course's first models: linear and logistic regression, the diabetes MLP, the x² curve fit."""

from __future__ import annotations

import torch
from torch import nn


class LinearModel(nn.Module):
    """y = w·x + b, the seed's first PyTorch model (x=[1,2,3] -> y=[2,4,6])."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1) -> (B, 1)
        return self.linear(x)


class LogisticRegressionModel(nn.Module):
    """P(pass | hours) = σ(w·x + b); trained with BCE, so it outputs a probability."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1) -> (B, 1) in (0, 1)
        return torch.sigmoid(self.linear(x))


class DiabetesModel(nn.Module):
    """8 -> 6 -> 4 -> 1 with sigmoids everywhere, as in the seed's 'Multiple Dimension Input'."""

    def __init__(self) -> None:
        super().__init__()
        self.linear1 = nn.Linear(8, 6)
        self.linear2 = nn.Linear(6, 4)
        self.linear3 = nn.Linear(4, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 8) -> (B, 1)
        x = self.sigmoid(self.linear1(x))  # (B, 6)
        x = self.sigmoid(self.linear2(x))  # (B, 4)
        return self.sigmoid(self.linear3(x))  # (B, 1)


class CurveNet(nn.Module):
    """1 -> 10 -> 1 with ReLU: fits y = x² + noise (the seed's regression demo)."""

    def __init__(self, n_feature: int = 1, n_hidden: int = 10, n_output: int = 1) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_feature, n_hidden)
        self.predict = nn.Linear(n_hidden, n_output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1) -> (B, 1)
        x = torch.relu(self.hidden(x))  # (B, 10)
        return self.predict(x)
