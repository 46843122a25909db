"""Your own Dataset for `tui-nn train`: build() returns a torch.utils.data.Dataset (or a
(train, val) pair) of (input, target) samples, and the run streams it through a DataLoader.

    tui-nn train cnn --dataset examples/my_data.py:build --epochs 3 --lr 0.05

Each sample is drawn when it is read (as a Dataset over files would decode one): a 1×28×28
image of a bar, horizontal, vertical or diagonal, with noise; the target is the bar's class
id (an int64: the run infers a 3-class classification from it, and the class names from
`classes`).
"""

import torch
from torch.utils.data import Dataset


class Bars(Dataset):
    classes = ["horizontal", "vertical", "diagonal"]

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        label = int(torch.randint(3, (1,), generator=gen))
        at = int(torch.randint(6, 22, (1,), generator=gen))
        image = torch.rand(1, 28, 28, generator=gen) * 0.3  # (1, 28, 28) noise
        if label == 0:
            image[0, at - 1:at + 2, 4:24] = 1.0
        elif label == 1:
            image[0, 4:24, at - 1:at + 2] = 1.0
        else:
            idx = torch.arange(4, 24)
            image[0, idx, (idx + at - 14).clamp(0, 27)] = 1.0
        return image, label


def build() -> tuple[Dataset, Dataset]:
    return Bars(2000, seed=0), Bars(500, seed=1)
