"""The data layer: embedded sets, torchvision loaders on tiny IDX files, CSV, image folders,
shape adaptation and the registry's errors. Offline and fast: every file is written here."""

from __future__ import annotations

import gzip
import json
import socket
import time
from urllib.error import URLError

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from data_helpers import write_csv, write_image, write_image_tree, write_mnist_raw
from tui_nn.data import (
    DATASETS,
    Dataset,
    DataError,
    adapt_to_input,
    list_datasets,
    load_dataset,
)
from tui_nn.data import digits as digits_mod
from tui_nn.data import torchvision_sets
from tui_nn.data.split import split_indices

SMALL_DIGITS = {"n_train": 200, "n_val": 50}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Never touch the real ~/.cache from tests.
    monkeypatch.setenv("TUI_NN_CACHE", str(tmp_path_factory.mktemp("cache")))


def _same(a: Dataset, b: Dataset) -> bool:
    return all(
        torch.equal(getattr(a, f), getattr(b, f)) for f in ("train_x", "train_y", "val_x", "val_y")
    )


# ---------------------------------------------------------------- embedded sets


@pytest.mark.parametrize(
    "spec, task, x_shape, x_dtype, y_shape, y_dtype, input_shape",
    [
        ("line", "regression", (3, 1), torch.float32, (3, 1), torch.float32, (1,)),
        ("hours", "binary", (3, 1), torch.float32, (3, 1), torch.float32, (1,)),
        ("curve", "regression", (100, 1), torch.float32, (100, 1), torch.float32, (1,)),
        ("diabetes", "binary", (607, 8), torch.float32, (607, 1), torch.float32, (8,)),
        ("hello", "sequence", (1, 5), torch.int64, (1, 5), torch.int64, (5,)),
        ("longrange", "classification", (4000, 50, 4), torch.float32, (4000,), torch.int64, (50, 4)),
        ("longrange:120", "classification", (4000, 120, 4), torch.float32, (4000,), torch.int64, (120, 4)),
    ],
)
def test_embedded_set_shapes_and_tasks(spec, task, x_shape, x_dtype, y_shape, y_dtype, input_shape):
    ds = load_dataset(spec)
    assert ds.task == task
    assert tuple(ds.train_x.shape) == x_shape and ds.train_x.dtype == x_dtype
    assert tuple(ds.train_y.shape) == y_shape and ds.train_y.dtype == y_dtype
    assert ds.input_shape == input_shape == tuple(ds.train_x.shape[1:])
    assert ds.val_x.shape[1:] == ds.train_x.shape[1:]
    assert ds.val_y.shape[1:] == ds.train_y.shape[1:]
    assert ds.n_val > 0


def test_line_and_hours_are_the_seed_points():
    line = load_dataset("line")
    assert line.train_x.flatten().tolist() == [1.0, 2.0, 3.0]
    assert line.train_y.flatten().tolist() == [2.0, 4.0, 6.0]
    assert torch.equal(line.val_x, line.train_x) and torch.equal(line.val_y, line.train_y)
    hours = load_dataset("hours")
    assert hours.train_y.flatten().tolist() == [0.0, 0.0, 1.0]
    assert hours.num_classes == 2


def test_curve_follows_its_law_with_fresh_validation_noise():
    ds = load_dataset("curve", seed=3)
    x = ds.train_x
    assert torch.allclose(x, torch.linspace(-1, 1, 100).unsqueeze(1))
    for y in (ds.train_y, ds.val_y):
        noise = y - x.pow(2)
        assert noise.min() >= 0 and noise.max() <= 0.2
    assert not torch.equal(ds.train_y, ds.val_y)


def test_diabetes_is_a_learnable_but_noisy_binary_table():
    ds = load_dataset("diabetes")
    assert ds.n_train + ds.n_val == 759
    x = torch.cat([ds.train_x, ds.val_x])
    y = torch.cat([ds.train_y, ds.val_y])
    assert x.min() >= -1 and x.max() <= 1
    assert set(y.unique().tolist()) == {0.0, 1.0}
    assert 0.25 < float(y.mean()) < 0.45  # a minority of positives, like the original
    # Logistic regression should get well above the majority rate but not near 100 %.
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(ds.train_x), ds.train_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = float(((model(ds.val_x) > 0) == (ds.val_y > 0.5)).float().mean())
    majority = max(float(ds.val_y.mean()), 1 - float(ds.val_y.mean()))
    assert majority + 0.05 < acc < 0.95


def test_hello_maps_hello_to_ohlol():
    ds = load_dataset("hello")
    vocab = ds.labels
    assert vocab == ("e", "h", "l", "o")
    assert "".join(vocab[i] for i in ds.train_x[0].tolist()) == "hello"
    assert "".join(vocab[i] for i in ds.train_y[0].tolist()) == "ohlol"
    assert ds.num_classes == 4


def test_longrange_label_is_the_first_symbol():
    ds = load_dataset("longrange:30", seed=1)
    x, y = ds.train_x, ds.train_y
    assert torch.all(x.sum(dim=-1) == 1)  # one-hot at every step
    assert torch.equal(x[:, 0].argmax(dim=-1), y)
    assert torch.bincount(y, minlength=4).tolist() == [1000] * 4
    # Later symbols carry no information: they agree with the label only at chance rate.
    later = x[:, 1:].argmax(dim=-1)
    agree = (later == y.unsqueeze(1)).float().mean()
    assert 0.2 < float(agree) < 0.3
    assert ds.num_classes == 4 and ds.name == "longrange:30"


@pytest.mark.parametrize("spec", ["longrange:0", "longrange:100000", "longrange:ten"])
def test_longrange_rejects_bad_lengths(spec):
    with pytest.raises(DataError, match="longrange"):
        load_dataset(spec)


@pytest.mark.parametrize("spec", ["line", "hours", "curve", "diabetes", "hello", "longrange"])
def test_embedded_sets_are_deterministic_per_seed(spec):
    assert _same(load_dataset(spec, seed=5), load_dataset(spec, seed=5))


@pytest.mark.parametrize("spec", ["curve", "diabetes", "longrange"])
def test_random_embedded_sets_change_with_the_seed(spec):
    assert not _same(load_dataset(spec, seed=1), load_dataset(spec, seed=2))


# ---------------------------------------------------------------- digits


def test_digits_shapes_range_and_balance():
    ds = load_dataset("digits", seed=0, **SMALL_DIGITS)
    assert ds.task == "classification" and ds.num_classes == 10
    assert tuple(ds.train_x.shape) == (200, 1, 28, 28) and ds.train_x.dtype == torch.float32
    assert tuple(ds.val_x.shape) == (50, 1, 28, 28)
    assert ds.train_y.dtype == torch.int64
    assert torch.bincount(ds.train_y, minlength=10).tolist() == [20] * 10
    assert torch.bincount(ds.val_y, minlength=10).tolist() == [5] * 10
    for x in (ds.train_x, ds.val_x):
        assert x.min() >= 0 and x.max() <= 1
        # uint8 storage: every value is k/255.
        assert torch.allclose(x * 255, (x * 255).round(), atol=1e-4)
    # MNIST-like: mostly dark background, bright strokes.
    assert 0.05 < ds.mean[0] < 0.35
    assert ds.mean[0] == pytest.approx(float(ds.train_x.mean()), rel=1e-5)
    assert ds.std[0] == pytest.approx(float(ds.train_x.std()), rel=1e-5)
    assert float((ds.train_x > 0.5).float().mean()) > 0.05
    assert ds.input_shape == (1, 28, 28)


def test_digits_deterministic_and_seeded(monkeypatch):
    a = load_dataset("digits", seed=0, cache=False, **SMALL_DIGITS)
    b = load_dataset("digits", seed=0, cache=False, **SMALL_DIGITS)
    c = load_dataset("digits", seed=1, cache=False, **SMALL_DIGITS)
    assert _same(a, b)
    assert not torch.equal(a.train_x, c.train_x)


def test_digits_cache_is_written_once_and_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("TUI_NN_CACHE", str(tmp_path / "cache"))
    first = load_dataset("digits", seed=4, **SMALL_DIGITS)
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].suffix == ".pt"
    assert "200" in files[0].name and "50" in files[0].name and "s4" in files[0].name

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cached tensors should have been used")

    monkeypatch.setattr(digits_mod, "_build", no_rebuild)
    assert _same(first, load_dataset("digits", seed=4, **SMALL_DIGITS))


def test_digits_regenerates_a_corrupt_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TUI_NN_CACHE", str(tmp_path))
    good = load_dataset("digits", seed=0, **SMALL_DIGITS)
    (cached,) = tmp_path.iterdir()
    cached.write_bytes(b"not a torch file")
    assert _same(good, load_dataset("digits", seed=0, **SMALL_DIGITS))
    assert len(list(tmp_path.iterdir())) == 1  # rewritten in place, no temp files left


def test_digits_labels_match_the_pictures():
    # A linear classifier on 1,000 samples must do far better than chance (10 %): catches
    # any label/image mix-up in the generator.
    ds = load_dataset("digits", seed=0, n_train=1000, n_val=300, cache=False)
    torch.manual_seed(0)
    model = torch.nn.Linear(784, 10)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x = (ds.train_x.flatten(1) - ds.mean[0]) / ds.std[0]
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(model(x), ds.train_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    val = (ds.val_x.flatten(1) - ds.mean[0]) / ds.std[0]
    acc = float((model(val).argmax(1) == ds.val_y).float().mean())
    assert acc > 0.6


def test_digits_rejects_empty_sizes():
    with pytest.raises(DataError, match="n_train"):
        load_dataset("digits", n_train=0, n_val=10)


# ---------------------------------------------------------------- torchvision sets


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_idx_files(tmp_path, gz):
    written = write_mnist_raw(tmp_path, n_train=20, n_test=10, gz=gz)
    ds = load_dataset("mnist", data_dir=tmp_path, download=False)
    assert ds.task == "classification" and ds.num_classes == 10
    assert tuple(ds.train_x.shape) == (20, 1, 28, 28) and ds.train_x.dtype == torch.float32
    assert tuple(ds.val_x.shape) == (10, 1, 28, 28)
    expected = torch.from_numpy(written["train_images"]).float().div(255).unsqueeze(1)
    assert torch.equal(ds.train_x, expected)
    assert ds.train_y.dtype == torch.int64
    assert ds.train_y.tolist() == written["train_labels"].tolist()
    assert ds.val_y.tolist() == written["test_labels"].tolist()
    assert ds.mean == (0.1307,) and ds.std == (0.3081,)
    assert ds.input_shape == (1, 28, 28)


def test_fashion_mnist_uses_its_own_folder_and_names(tmp_path):
    write_mnist_raw(tmp_path, folder="FashionMNIST")
    ds = load_dataset("fashion-mnist", data_dir=tmp_path, download=False)
    assert ds.labels[0] == "T-shirt/top" and len(ds.labels) == 10
    assert ds.mean == (0.2860,)


def test_mnist_default_data_dir_comes_from_env(tmp_path, monkeypatch):
    write_mnist_raw(tmp_path)
    monkeypatch.setenv("TUI_NN_DATA", str(tmp_path))
    assert load_dataset("mnist", download=False).n_train == 20


def test_missing_mnist_offline_says_where_and_what(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert str((tmp_path / "MNIST" / "raw").resolve()) in message
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        assert name in message
    assert "'digits'" in message
    assert "\n" not in message


def test_incomplete_mnist_names_the_missing_file(tmp_path):
    write_mnist_raw(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"lacks t10k-labels-idx1-ubyte and downloading is turned off"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_missing_cifar_names_its_files(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert "cifar-10-batches-py" in message and "data_batch_1" in message
    assert "cifar-10-python.tar.gz" in message


def test_cifar_tarball_is_unpacked_and_checked(tmp_path):
    # Dummy batches fail torchvision's md5 check: unpacked, then refused with a clear message.
    import io
    import tarfile

    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name in torchvision_sets.SOURCES["cifar10"].files:
            payload = b"dummy"
            member = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
    with pytest.raises(DataError, match="cannot be read"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert (tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes() == b"dummy"


def test_cifar_style_arrays_decode_to_nchw():
    class FakeCifar:  # what torchvision.datasets.CIFAR10 exposes after loading
        data = np.arange(2 * 32 * 32 * 3, dtype=np.uint8).reshape(2, 32, 32, 3)  # (N, H, W, C)
        targets = [3, 7]

    x, y = torchvision_sets._decode(torchvision_sets.SOURCES["cifar10"], FakeCifar())
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32 and x.is_contiguous()
    assert float(x[1, 2, 5, 6]) == pytest.approx(FakeCifar.data[1, 5, 6, 2] / 255)
    assert y.tolist() == [3, 7] and y.dtype == torch.int64


def test_unreachable_mirror_fails_fast_without_calling_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    monkeypatch.setattr(torchvision_sets, "_reachable", lambda url: "host unreachable: no network")

    def must_not_download(self):
        raise AssertionError("torchvision's download should not be attempted")

    monkeypatch.setattr(tvd.MNIST, "download", must_not_download)
    start = time.monotonic()
    with pytest.raises(DataError, match="could not be downloaded.*digits"):
        load_dataset("mnist", data_dir=tmp_path, download=True)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(
    "error", [URLError("no route"), TimeoutError("timed out"), socket.timeout("slow"), RuntimeError("md5")]
)
def test_any_download_failure_becomes_a_data_error(tmp_path, monkeypatch, error):
    import torchvision.datasets as tvd

    monkeypatch.setattr(torchvision_sets, "_reachable", lambda url: None)

    def failing_download(self):
        raise error

    monkeypatch.setattr(tvd.MNIST, "download", failing_download)
    before = socket.getdefaulttimeout()
    with pytest.raises(DataError, match="download failed") as info:
        load_dataset("mnist", data_dir=tmp_path, download=True)
    assert "\n" not in str(info.value)
    assert socket.getdefaulttimeout() == before  # the temporary socket timeout is undone


def test_reachability_probe_reports_a_refused_port():
    # Port 9 on localhost is closed here: the probe must say so instead of raising.
    reason = torchvision_sets._reachable("http://127.0.0.1:9/")
    assert reason is not None and "127.0.0.1" in reason


def test_corrupt_idx_file_is_a_clear_error(tmp_path):
    write_mnist_raw(tmp_path)
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x09\x99garbage")
    with pytest.raises(DataError, match="cannot be read"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_truncated_gz_is_a_clear_error(tmp_path):
    write_mnist_raw(tmp_path, gz=True)
    packed = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    packed.write_bytes(packed.read_bytes()[:40])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


# ---------------------------------------------------------------- CSV


def test_csv_binary_with_header(tmp_path):
    rows = [[i, i * 0.5, i % 2] for i in range(10)]
    path = write_csv(tmp_path / "t.csv", rows, header=["a", "b", "label"])
    ds = load_dataset(f"csv:{path}")
    assert ds.task == "binary" and ds.num_classes == 2
    assert (ds.n_train, ds.n_val) == (8, 2)
    assert ds.train_y.shape == (8, 1) and ds.train_y.dtype == torch.float32
    assert ds.input_shape == (2,)
    # Every row lands in exactly one split, with its own target.
    x = torch.cat([ds.train_x, ds.val_x])
    y = torch.cat([ds.train_y, ds.val_y])
    assert sorted(x[:, 0].tolist()) == list(map(float, range(10)))
    assert torch.equal(y[:, 0], x[:, 0] % 2)


def test_csv_gz_without_header_multiclass(tmp_path):
    rows = [[i, -i, [3, 5, 7][i % 3]] for i in range(30)]
    path = write_csv(tmp_path / "t.csv.gz", rows)
    ds = load_dataset(f"csv:{path}")
    assert ds.task == "classification" and ds.num_classes == 3
    assert ds.labels == ("3", "5", "7")
    assert ds.train_y.dtype == torch.int64 and ds.train_y.dim() == 1
    x = torch.cat([ds.train_x, ds.val_x])
    y = torch.cat([ds.train_y, ds.val_y])
    assert torch.equal(y, x[:, 0].long() % 3)  # 3 -> 0, 5 -> 1, 7 -> 2
    assert ds.n_train + ds.n_val == 30


def test_csv_regression_and_bare_path(tmp_path):
    rows = [[i, i * 1.5 + 0.25] for i in range(20)]
    path = write_csv(tmp_path / "r.csv", rows)
    ds = load_dataset(str(path))  # no prefix: the .csv suffix is enough
    assert ds.task == "regression" and ds.num_classes is None
    assert ds.train_y.shape == (16, 1) and ds.train_y.dtype == torch.float32


def test_csv_two_integer_values_map_to_binary(tmp_path):
    path = write_csv(tmp_path / "t.csv", [[i, 1 + i % 2] for i in range(10)])
    ds = load_dataset(f"csv:{path}")
    assert ds.task == "binary" and ds.labels == ("1", "2")
    y = torch.cat([ds.train_y, ds.val_y])
    assert set(y.flatten().tolist()) == {0.0, 1.0}


def test_csv_many_integer_values_are_regression(tmp_path):
    path = write_csv(tmp_path / "t.csv", [[i, i] for i in range(30)])
    assert load_dataset(f"csv:{path}").task == "regression"


def test_csv_split_is_seeded(tmp_path):
    path = write_csv(tmp_path / "t.csv", [[i, i % 2] for i in range(50)])
    a, b, c = (load_dataset(f"csv:{path}", seed=s) for s in (1, 1, 2))
    assert _same(a, b)
    assert not torch.equal(a.val_x, c.val_x)


def test_csv_semicolon_delimiter(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("x;y;t\n1;2;0\n3;4;1\n5;6;0\n7;8;1\n9;10;1\n")
    ds = load_dataset(f"csv:{path}")
    assert ds.input_shape == (2,) and ds.task == "binary"


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("a,b\n", "no data rows"),
        ("1\n2\n3\n", "at least 2"),
        ("1,2,0\n3,4\n", r"line 2: 2 columns, expected 3"),
        ("x,y,t\n1,2,0\n3,oops,1\n", r"line 3, column 2 \('y'\): 'oops' is not a number"),
        ("1,2,0\n3,,1\n", r"line 2, column 2: '' is not a number"),
        ("1,2,0\n", "at least 2"),
    ],
)
def test_csv_errors(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=match):
        load_dataset(f"csv:{path}")


def test_csv_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(f"csv:{tmp_path / 'nope.csv'}")


def test_csv_corrupt_gzip(tmp_path):
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(gzip.compress(b"1,2,3\n" * 100)[:30])
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(f"csv:{path}")


# ---------------------------------------------------------------- image folders


def test_folder_grayscale_tree(tmp_path):
    root = write_image_tree(tmp_path / "imgs", {"cat": 5, "dog": 5}, mode="L", size=(8, 6))
    ds = load_dataset(f"folder:{root}")
    assert ds.task == "classification" and ds.num_classes == 2
    assert ds.labels == ("cat", "dog")
    assert ds.input_shape == (1, 6, 8)
    assert ds.train_x.dtype == torch.float32 and ds.train_x.shape[1:] == (1, 6, 8)
    assert ds.n_train + ds.n_val == 10
    # Stratified: both classes appear in validation.
    assert sorted(ds.val_y.tolist()) == [0, 1]
    # Pixels survive decoding: cat i has grey level i, dog i has 40 + i.
    x = torch.cat([ds.train_x, ds.val_x])
    y = torch.cat([ds.train_y, ds.val_y])
    levels = (x[:, 0, 0, 0] * 255).round()
    assert torch.all((levels >= 40) == (y == 1))
    assert len(ds.mean) == 1 and len(ds.std) == 1


def test_folder_rgb_tree(tmp_path):
    root = write_image_tree(tmp_path / "imgs", {"a": 3, "b": 3, "c": 3}, mode="RGB", size=(5, 5))
    ds = load_dataset(f"folder:{root}")
    assert ds.input_shape == (3, 5, 5) and ds.num_classes == 3
    assert len(ds.mean) == 3


def test_folder_mixed_sizes_resize_to_default(tmp_path):
    root = tmp_path / "imgs"
    write_image(root / "a" / "1.png", "L", (10, 12), 100)
    write_image(root / "a" / "2.png", "L", (40, 40), 100)
    write_image(root / "b" / "1.png", "L", (28, 28), 200)
    write_image(root / "b" / "2.png", "L", (7, 9), 200)
    assert load_dataset(f"folder:{root}").input_shape == (1, 28, 28)
    write_image(root / "b" / "3.png", "RGB", (7, 9), 200)
    assert load_dataset(f"folder:{root}").input_shape == (3, 32, 32)
    assert load_dataset(f"folder:{root}", image_size=(16, 20)).input_shape == (3, 16, 20)


def test_folder_keeps_an_existing_train_val_split(tmp_path):
    write_image_tree(tmp_path / "imgs" / "train", {"x": 4, "y": 4})
    write_image_tree(tmp_path / "imgs" / "val", {"x": 1, "y": 2})
    ds = load_dataset(str(tmp_path / "imgs"))  # a bare existing folder is read as folder:
    assert (ds.n_train, ds.n_val) == (8, 3)
    assert ds.val_y.tolist() == [0, 1, 1]


@pytest.mark.parametrize("form", ["imgs", "./imgs", "imgs/", "ABS"])
def test_a_bare_folder_trains_from_the_command_line(tmp_path, monkeypatch, form):
    """README: a bare existing folder works as --dataset without the prefix (issue 31.2);
    the command's check used to refuse it as an unknown name before training could load it."""
    from PIL import Image
    from typer.testing import CliRunner

    from tui_nn.cli import app

    for name, red in (("cat", 30), ("dog", 200)):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(4):  # real JPEG and PNG files, as a user's folder holds
            suffix = "jpg" if i % 2 else "png"
            Image.new("RGB", (32, 32), (red + i, 50, 90)).save(tmp_path / "imgs" / name / f"{i}.{suffix}")
    monkeypatch.chdir(tmp_path)
    spec = str(tmp_path / "imgs") if form == "ABS" else form
    result = CliRunner().invoke(app, ["train", "cnn", "--dataset", spec, "--epochs", "1",
                                      "--headless", "--run-dir", "run"])
    assert result.exit_code == 0, result.output
    assert "unknown dataset" not in result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["dataset"] == spec


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "flat").mkdir()
    write_image(tmp_path / "flat" / "1.png", "L", (4, 4), 1)
    with pytest.raises(DataError, match="no class subfolders.*found 1 images"):
        load_dataset(f"folder:{tmp_path / 'flat'}")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    with pytest.raises(DataError, match="no images found"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    write_image_tree(tmp_path / "one", {"only": 3})
    with pytest.raises(DataError, match="only one class"):
        load_dataset(f"folder:{tmp_path / 'one'}")


def test_folder_names_an_unreadable_image(tmp_path):
    """Skipped and listed by default; --strict (strict=True) stops at it, naming it."""
    root = write_image_tree(tmp_path / "imgs", {"a": 2, "b": 2})
    bad = root / "b" / "broken.png"
    bad.write_bytes(b"definitely not a png")
    ds = load_dataset(f"folder:{root}")
    assert ds.n_train + ds.n_val == 4 and len(ds.skipped) == 1 and "broken.png" in ds.skipped[0]
    with pytest.raises(DataError, match="broken.png.*--strict"):
        load_dataset(f"folder:{root}", strict=True)


def test_folder_names_an_empty_class(tmp_path):
    root = write_image_tree(tmp_path / "imgs", {"a": 2, "b": 2})
    (root / "c").mkdir()
    with pytest.raises(DataError, match="c under"):
        load_dataset(f"folder:{root}")


# ---------------------------------------------------------------- adapt_to_input


def _images(name: str, c: int, h: int, w: int, n: int = 4) -> Dataset:
    x = torch.rand(n, c, h, w) + 0.5  # strictly positive, so padding zeros are visible
    return Dataset(
        name=name,
        task="classification",
        train_x=x,
        train_y=torch.zeros(n, dtype=torch.int64),
        val_x=x[:2].clone(),
        val_y=torch.zeros(2, dtype=torch.int64),
        input_shape=(c, h, w),
        num_classes=10,
    )


def test_adapt_same_shape_is_unchanged():
    ds = _images("mnist", 1, 28, 28)
    assert adapt_to_input(ds, (1, 28, 28), "cnn") is ds


def test_adapt_pads_28_to_32_centred():
    ds = _images("mnist", 1, 28, 28)
    out = adapt_to_input(ds, (1, 32, 32), "lenet")
    assert out.input_shape == (1, 32, 32)
    assert out.train_x.shape == (4, 1, 32, 32) and out.val_x.shape == (2, 1, 32, 32)
    assert torch.equal(out.train_x[:, :, 2:30, 2:30], ds.train_x)
    border = out.train_x.clone()
    border[:, :, 2:30, 2:30] = 0
    assert torch.count_nonzero(border) == 0
    assert out.train_y is ds.train_y and ds.train_x.shape == (4, 1, 28, 28)  # input untouched


def test_adapt_crops_centre():
    ds = _images("big", 3, 36, 34)
    out = adapt_to_input(ds, (3, 32, 32), "resnet")
    assert torch.equal(out.train_x, ds.train_x[:, :, 2:34, 1:33])


def test_adapt_flat_model_keeps_images():
    ds = _images("mnist", 1, 28, 28)
    assert adapt_to_input(ds, (784,), "mlp") is ds


def test_adapt_wildcard_dimension_matches_any_length():
    ds = load_dataset("longrange:20")
    assert adapt_to_input(ds, (-1, 4), "lstm") is ds


@pytest.mark.parametrize(
    "ds_shape, model_shape",
    [((3, 32, 32), (1, 28, 28)), ((1, 28, 28), (3, 32, 32)), ((1, 28, 28), (100,))],
)
def test_adapt_refuses_what_it_cannot_fix(ds_shape, model_shape):
    ds = _images("cifar10", *ds_shape)
    with pytest.raises(DataError) as info:
        adapt_to_input(ds, model_shape, "cnn")
    fmt = lambda s: "×".join(map(str, s))  # noqa: E731
    assert f"model cnn expects input {fmt(model_shape)} but dataset cifar10 gives {fmt(ds_shape)}" in str(
        info.value
    )


def test_adapt_refuses_feature_count_mismatch():
    with pytest.raises(DataError, match="expects input 4 but dataset diabetes gives 8"):
        adapt_to_input(load_dataset("diabetes"), (4,), "mlp")


# ---------------------------------------------------------------- registry


def test_unknown_name_suggests_the_closest():
    with pytest.raises(DataError) as info:
        load_dataset("minst")
    message = str(info.value)
    assert "Did you mean 'mnist'?" in message
    for name in DATASETS:
        assert name in message
    assert "csv:PATH" in message


def test_unknown_prefix_suggests_the_closest():
    with pytest.raises(DataError, match="Did you mean csv:"):
        load_dataset("cvs:foo.txt")


def test_empty_spec_and_empty_path():
    with pytest.raises(DataError, match="no dataset given"):
        load_dataset("  ")
    with pytest.raises(DataError, match="needs a path"):
        load_dataset("folder:")


@pytest.mark.parametrize("alias", ["fashion_mnist", "FashionMNIST", "CIFAR-10", "Digits"])
def test_aliases_and_case_resolve(alias, tmp_path):
    # Resolution is what matters: offline the torchvision sets fail with their own message.
    try:
        load_dataset(alias, data_dir=tmp_path, download=False, **SMALL_DIGITS)
    except DataError as exc:
        assert "unknown dataset" not in str(exc)


def test_registry_entries_describe_their_data():
    infos = list_datasets()
    assert [i.name for i in infos] == list(DATASETS)
    assert {"line", "hours", "curve", "diabetes", "hello", "longrange", "digits", "mnist"} <= set(DATASETS)
    for info in infos:
        assert info.description
        if info.embedded:
            ds = load_dataset(info.name, **SMALL_DIGITS)
            assert ds.input_shape == info.input_shape
            assert ds.task == info.task
        else:
            assert info.name in ("mnist", "fashion-mnist", "cifar10")


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 500), seed=st.integers(0, 2**31), stratify=st.booleans())
def test_split_is_a_partition_with_both_sides_non_empty(n, seed, stratify):
    strata = torch.arange(n) % 3 if stratify else None
    train, val = split_indices(n, seed, strata=strata)
    assert train.numel() > 0 and val.numel() > 0
    assert sorted(torch.cat([train, val]).tolist()) == list(range(n))
    assert val.numel() <= max(1, round(0.2 * n)) + 3
