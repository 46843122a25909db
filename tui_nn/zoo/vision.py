"""The course's image classifiers, layer sizes exactly as in the seed notes.

Each Linear's in_features is what the shape inspector explains: 320 = 20×4×4 (cnn),
512 = 32×4×4 (resnet), 400 = 16×5×5 (lenet on 32×32), 1408 = 88×4×4 (inception).
Each takes ``in_channels`` and ``num_classes`` (the seeds' 1 and 10 by default) so the engine can
build it for a user's image folder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SoftmaxMLP(nn.Module):
    """784 -> 512 -> 256 -> 128 -> 64 -> 10; CrossEntropyLoss applies the softmax."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.in_features = in_channels * 784  # C × 28 × 28
        self.l1 = nn.Linear(self.in_features, 512)
        self.l2 = nn.Linear(512, 256)
        self.l3 = nn.Linear(256, 128)
        self.l4 = nn.Linear(128, 64)
        self.l5 = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, self.in_features)  # (B, 1, 28, 28) -> (B, 784)
        x = F.relu(self.l1(x))  # (B, 512)
        x = F.relu(self.l2(x))  # (B, 256)
        x = F.relu(self.l3(x))  # (B, 128)
        x = F.relu(self.l4(x))  # (B, 64)
        return self.l5(x)  # (B, classes) logits: no activation before CrossEntropyLoss


class BasicCNN(nn.Module):
    """The seed's basic CNN: conv 5×5 -> pool 2 -> conv 5×5 -> pool 2 -> Linear(320, 10)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.pooling = nn.MaxPool2d(2)
        self.fc = nn.Linear(320, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_size = x.size(0)
        x = F.relu(self.pooling(self.conv1(x)))  # (B, 10, 12, 12)
        x = F.relu(self.pooling(self.conv2(x)))  # (B, 20, 4, 4)
        x = x.view(batch_size, -1)  # (B, 320)
        return self.fc(x)  # (B, classes)


class ResidualBlock(nn.Module):
    """Two 3×3 convs with padding 1 (shape kept), added back to the input: F(x) + x."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> same
        y = F.relu(self.conv1(x))
        y = self.conv2(y)
        return F.relu(x + y)


class ResidualCNN(nn.Module):
    """The seed's residual net: the skip connections keep gradients flowing; Linear takes 512."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, kernel_size=5)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=5)
        self.rblock1 = ResidualBlock(16)
        self.rblock2 = ResidualBlock(32)
        self.mp = nn.MaxPool2d(2)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        in_size = x.size(0)
        x = self.mp(F.relu(self.conv1(x)))  # (B, 16, 12, 12)
        x = self.rblock1(x)  # (B, 16, 12, 12)
        x = self.mp(F.relu(self.conv2(x)))  # (B, 32, 4, 4)
        x = self.rblock2(x)  # (B, 32, 4, 4)
        x = x.view(in_size, -1)  # (B, 512)
        return self.fc(x)


class LeNet(nn.Module):
    """LeNet-5 as in the PyTorch tutorial notes: 1×32×32 in, so 16·5·5 = 400 features."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))  # (B, 6, 14, 14)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 16, 5, 5)
        x = torch.flatten(x, 1)  # (B, 400)
        x = F.relu(self.fc1(x))  # (B, 120)
        x = F.relu(self.fc2(x))  # (B, 84)
        return self.fc3(x)  # (B, classes)


class InceptionA(nn.Module):
    """Four parallel branches concatenated on channels: 16 + 24 + 24 + 24 = 88."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch1x1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch5x5_1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch5x5_2 = nn.Conv2d(16, 24, kernel_size=5, padding=2)
        self.branch3x3_1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch3x3_2 = nn.Conv2d(16, 24, kernel_size=3, padding=1)
        self.branch3x3_3 = nn.Conv2d(24, 24, kernel_size=3, padding=1)
        self.branch_pool = nn.Conv2d(in_channels, 24, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 88, H, W)
        branch1x1 = self.branch1x1(x)  # (B, 16, H, W)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))  # (B, 24, H, W)
        branch3x3 = self.branch3x3_3(self.branch3x3_2(self.branch3x3_1(x)))  # (B, 24, H, W)
        branch_pool = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)
        branch_pool = self.branch_pool(branch_pool)  # (B, 24, H, W)
        return torch.cat([branch1x1, branch5x5, branch3x3, branch_pool], dim=1)


class InceptionNet(nn.Module):
    """The course's small GoogLeNet: 88 channels × 4 × 4 = 1408 features into the Linear."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(88, 20, kernel_size=5)
        self.incep1 = InceptionA(in_channels=10)
        self.incep2 = InceptionA(in_channels=20)
        self.mp = nn.MaxPool2d(2)
        self.fc = nn.Linear(1408, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        in_size = x.size(0)
        x = F.relu(self.mp(self.conv1(x)))  # (B, 10, 12, 12)
        x = self.incep1(x)  # (B, 88, 12, 12)
        x = F.relu(self.mp(self.conv2(x)))  # (B, 20, 4, 4)
        x = self.incep2(x)  # (B, 88, 4, 4)
        x = x.view(in_size, -1)  # (B, 1408)
        return self.fc(x)
