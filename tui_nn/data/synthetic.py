"""The seed course's toy data, generated in code: no files, no download, deterministic per seed.

Each loader mirrors a lesson: ``line`` (y = 2x, linear regression), ``hours`` (study hours ->
pass, logistic regression), ``curve`` (x² + noise, the first hidden layer), ``diabetes`` (the
8-6-4-1 sigmoid MLP), ``hello`` (the char RNN) and ``longrange`` (why LSTM/GRU beat a plain RNN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Dataset, DataError
from .split import split_indices


def _val_is_train(x: torch.Tensor, y: torch.Tensor, **fields: object) -> Dataset:
    """A toy whose validation repeats its training points: too few to hold any out."""
    return Dataset(train_x=x, train_y=y, val_x=x.clone(), val_y=y.clone(), **fields)


def load_line(**_: object) -> Dataset:
    """x = 1, 2, 3 -> y = 2, 4, 6. Validation is the same three points: the lesson is about
    watching w converge to 2, and three points leave nothing to hold out."""
    x = torch.tensor([[1.0], [2.0], [3.0]])  # (3, 1)
    y = torch.tensor([[2.0], [4.0], [6.0]])  # (3, 1)
    return _val_is_train(
        x, y,
        name="line",
        task="regression",
        input_shape=(1,),
        description="y = 2x on x = 1, 2, 3 (the seed's linear-regression toy; val = train)",
    )


def load_hours(**_: object) -> Dataset:
    """Study hours 1, 2, 3 -> fail, fail, pass. Validation repeats the training points."""
    x = torch.tensor([[1.0], [2.0], [3.0]])  # (3, 1)
    y = torch.tensor([[0.0], [0.0], [1.0]])  # (3, 1)
    return _val_is_train(
        x, y,
        name="hours",
        task="binary",
        input_shape=(1,),
        num_classes=2,
        labels=("fail", "pass"),
        description="hours studied 1, 2, 3 -> fail, fail, pass (logistic regression; val = train)",
    )


def load_curve(*, seed: int = 0, **_: object) -> Dataset:
    """y = x² + 0.2·U(0, 1) on 100 points of [-1, 1]; validation redraws the noise on the same
    grid, so a curve that memorises the training noise shows a gap."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.linspace(-1, 1, 100).unsqueeze(1)  # (100, 1)
    train_y = x.pow(2) + 0.2 * torch.rand(x.shape, generator=gen)  # (100, 1)
    val_y = x.pow(2) + 0.2 * torch.rand(x.shape, generator=gen)  # (100, 1)
    return Dataset(
        name="curve",
        task="regression",
        train_x=x,
        train_y=train_y,
        val_x=x.clone(),
        val_y=val_y,
        input_shape=(1,),
        description="y = x² + 0.2·U(0,1) on 100 points of [-1, 1]; val = a fresh noise draw",
    )


# Fixed weights of the rule that makes the diabetes-like labels. Glucose, BMI, age and the
# pedigree function matter most, as in the real Pima data; blood pressure and skin barely.
_DIABETES_W = torch.tensor([0.25, 1.05, -0.1, 0.05, 0.1, 0.65, 0.35, 0.3])
_DIABETES_B = -0.9
_DIABETES_FEATURES = (
    "pregnancies",
    "glucose",
    "blood_pressure",
    "skin_thickness",
    "insulin",
    "bmi",
    "pedigree",
    "age",
)


def load_diabetes(*, seed: int = 0, n: int = 759, **_: object) -> Dataset:
    """A stand-in for the seed's diabetes.csv.gz: 759 rows, 8 features in [-1, 1], binary label.

    Features are correlated (a shared "health" factor) and skewed like the originals; the label
    is Bernoulli(sigmoid(w·x + b)) with a fixed w, so no model can beat the rule's own accuracy
    (about 80 %) and a small sigmoid MLP lands in the seed's 75-80 % range.
    """
    gen = torch.Generator().manual_seed(seed)
    health = torch.randn(n, 1, generator=gen)  # (n, 1) shared latent factor
    raw = 0.6 * health + 0.8 * torch.randn(n, 8, generator=gen)  # (n, 8)
    # Pregnancies, insulin, pedigree and age are right-skewed counts/durations in the original.
    skewed = [0, 4, 6, 7]
    raw[:, skewed] = torch.exp(0.6 * raw[:, skewed]) - 1.0
    # Scale each column to [-1, 1] like the course's pre-normalised file.
    lo = raw.min(dim=0).values
    hi = raw.max(dim=0).values
    x = 2 * (raw - lo) / (hi - lo) - 1  # (n, 8)
    # The rule is defined on standardised features so its weights mean "per standard deviation".
    z = (x - x.mean(dim=0)) / x.std(dim=0)
    p = torch.sigmoid(z @ _DIABETES_W + _DIABETES_B)  # (n,)
    y = (torch.rand(n, generator=gen) < p).float().unsqueeze(1)  # (n, 1)
    train_idx, val_idx = split_indices(n, seed)
    return Dataset(
        name="diabetes",
        task="binary",
        train_x=x[train_idx],
        train_y=y[train_idx],
        val_x=x[val_idx],
        val_y=y[val_idx],
        input_shape=(8,),
        num_classes=2,
        labels=("no diabetes", "diabetes"),
        description=(
            f"diabetes-like: {n} rows, 8 features in [-1, 1] ({', '.join(_DIABETES_FEATURES)}), "
            "binary label from a noisy logistic rule; 80/20 split"
        ),
    )


HELLO_VOCAB = ("e", "h", "l", "o")


def load_hello(**_: object) -> Dataset:
    """The char RNN toy: read "hello", predict "ohlol" one character per step.

    Inputs are vocabulary indices, not one-hot vectors: the model embeds (or one-hots) them
    itself, which keeps the dataset the same for an Embedding and a one-hot RNN.
    """
    index = {c: i for i, c in enumerate(HELLO_VOCAB)}
    x = torch.tensor([[index[c] for c in "hello"]], dtype=torch.int64)  # (1, 5)
    y = torch.tensor([[index[c] for c in "ohlol"]], dtype=torch.int64)  # (1, 5)
    return _val_is_train(
        x, y,
        name="hello",
        task="sequence",
        input_shape=(5,),
        num_classes=len(HELLO_VOCAB),
        labels=HELLO_VOCAB,
        description='char RNN toy: "hello" -> "ohlol" over the vocabulary e, h, l, o (val = train)',
    )


LONGRANGE_SYMBOLS = 4
LONGRANGE_DEFAULT_LEN = 50
LONGRANGE_MAX_LEN = 2000


def load_longrange(
    *, seed: int = 0, length: int = LONGRANGE_DEFAULT_LEN, n_train: int = 4000, n_val: int = 1000, **_: object
) -> Dataset:
    """Remember the first symbol: the label is the symbol at position 0, the rest is noise.

    A classifier reading the last hidden state must carry one symbol across ``length`` steps.
    A tanh RNN's gradient to step 0 shrinks geometrically with the distance, so it stays near
    chance (25 %) from about 50 steps on, while LSTM/GRU gates let it through.
    """
    if not 1 <= length <= LONGRANGE_MAX_LEN:
        raise DataError(f"longrange length must be between 1 and {LONGRANGE_MAX_LEN}, got {length}")
    gen = torch.Generator().manual_seed(seed)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = (torch.arange(n) % LONGRANGE_SYMBOLS)[torch.randperm(n, generator=gen)]  # (n,)
        symbols = torch.randint(0, LONGRANGE_SYMBOLS, (n, length), generator=gen)  # (n, L)
        symbols[:, 0] = labels
        return F.one_hot(symbols, LONGRANGE_SYMBOLS).float(), labels  # (n, L, 4), (n,)

    train_x, train_y = draw(n_train)
    val_x, val_y = draw(n_val)
    return Dataset(
        name="longrange" if length == LONGRANGE_DEFAULT_LEN else f"longrange:{length}",
        task="classification",
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        input_shape=(length, LONGRANGE_SYMBOLS),
        num_classes=LONGRANGE_SYMBOLS,
        labels=tuple("ABCD"),
        description=(
            f"long-range memory: {length} one-hot symbols, the class is the first one "
            "(plain RNN ≈ chance from ~50 steps; LSTM/GRU learn it)"
        ),
    )
