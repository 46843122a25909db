"""The seed notes' training loop, kept faithful on purpose: it is the baseline tui-nn must beat.

DataLoader over torchvision's MNIST with per-sample ToTensor + Normalize, batch 64, SGD lr 0.01
momentum 0.5, `loss.item()` every step, a test loop with batch 64 (seed 002, "Basic CNN").
"""

from __future__ import annotations

import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def train_seed_style(model: torch.nn.Module, root: str, epochs: int, batch_size: int = 64,
                     device: str = "cpu") -> dict:
    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.1307,), (0.3081,))])
    train_dataset = datasets.MNIST(root=root, train=True, download=False, transform=transform)
    train_loader = DataLoader(train_dataset, shuffle=True, batch_size=batch_size)
    test_dataset = datasets.MNIST(root=root, train=False, download=False, transform=transform)
    test_loader = DataLoader(test_dataset, shuffle=False, batch_size=batch_size)

    model.to(device)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)

    def train(epoch):
        running_loss = 0.0
        for batch_idx, data in enumerate(train_loader, 0):
            inputs, target = data
            inputs, target = inputs.to(device), target.to(device)
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = criterion(outputs, target)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            if batch_idx % 300 == 299:
                running_loss = 0.0

    def test():
        correct = 0
        total = 0
        with torch.no_grad():
            for data in test_loader:
                images, labels = data
                images, labels = images.to(device), labels.to(device)
                outputs = model(images)
                _, predicted = torch.max(outputs.data, dim=1)
                total += labels.size(0)
                correct += (predicted == labels).sum().item()
        return correct / total

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    acc = 0.0
    for epoch in range(epochs):
        train(epoch)
        acc = test()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "samples_per_s": epochs * len(train_dataset) / seconds,
            "accuracy": acc}
