"""The Lightning and Hugging Face callbacks with the real libraries, on tiny models built here
(CPU, no download): a fit is listed by `tui-nn runs` with its steps and epochs, and pause,
resume, lr, checkpoint and stop requests sent through the control channel act on the
framework's own training loop."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tui_nn.engine.channel import send
from tui_nn.runs.discover import discover_runs

torch = pytest.importorskip("torch")


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _data(n: int = 64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)  # (n, 4)
    return x, x.sum(dim=1, keepdim=True)  # (n, 1): a line to fit


def _steer_at(run_dir: Path, step: int, requests: dict[int, str]) -> None:
    """Send the request planned for this step (a pause is resumed 0.3 s later, from a thread,
    while the training loop waits)."""
    action = requests.get(step)
    if action == "lr":
        assert send(run_dir, "lr", factor=0.5)["ok"]
    elif action:
        assert send(run_dir, action)["ok"]
    if action == "pause":
        threading.Timer(0.3, send, (run_dir, "resume")).start()


def _listed(root: Path, name: str):
    [info] = [i for i in discover_runs(root) if i.name == name]
    return info


def test_importing_the_integrations_package_loads_no_framework():
    code = ("import sys, tui_nn, tui_nn.integrations; print([m for m in "
            "('torch', 'lightning', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


# ---- Lightning --------------------------------------------------------------------------------
def _lightning_fit(tmp_path: Path, max_epochs: int, requests: dict[int, str] | None = None):
    L = pytest.importorskip("lightning.pytorch")
    from tui_nn.integrations.lightning import TuiNNCallback

    class TinyNet(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_mse", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    class Steer(L.Callback):  # runs before TuiNNCallback in the same batch end
        def on_train_batch_end(self, trainer, *args):
            _steer_at(callback.run.path, trainer.global_step, requests or {})

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*_data()), batch_size=8)
    callback = TuiNNCallback(tmp_path / "runs" / "lit", report_interval_s=0.0)
    trainer = L.Trainer(max_epochs=max_epochs, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path,
                        callbacks=[Steer(), callback])
    model = TinyNet()
    trainer.fit(model, loader, loader)
    return tmp_path / "runs" / "lit", trainer


def test_lightning_fit_is_a_run_that_runs_lists(tmp_path):
    run, _ = _lightning_fit(tmp_path, max_epochs=2)
    info = _listed(tmp_path / "runs", "lit")
    assert (info.status, info.model, info.steps_done, info.epochs_done) == (
        "finished", "TinyNet", 16, 2)
    assert info.steps_total == 16 and info.metric == "val_loss"
    records = _records(run)
    epochs = [r for r in records if r["type"] == "EpochMetrics"]
    assert epochs[1]["val_loss"] < epochs[0]["val_loss"]  # the validation's loss, learning
    steps = [r for r in records if r["type"] == "StepMetrics"]
    assert steps[0]["lr"] == pytest.approx(0.05) and "train_mse" in steps[0]["scalars"]
    assert not (run / "control.sock").exists()


def test_lightning_is_paused_scaled_checkpointed_and_stopped_from_outside(tmp_path):
    run, trainer = _lightning_fit(tmp_path, max_epochs=50, requests={
        2: "pause", 3: "lr", 4: "checkpoint", 6: "stop"})
    records = _records(run)
    assert [r["state"] for r in records if r["type"] == "StateChanged"] == ["paused", "running"]
    [scaled] = [r for r in records if r["type"] == "LrScaled"]
    assert scaled["lr"] == pytest.approx(0.025)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.025)
    [saved] = [r for r in records if r["type"] == "CheckpointSaved"]
    assert saved["reason"] == "requested" and Path(saved["path"]).is_file()
    assert "state_dict" in torch.load(saved["path"], weights_only=False)
    assert records[-1]["type"] == "Finished" and records[-1]["status"] == "stopped"
    info = _listed(tmp_path / "runs", "lit")
    # Of 50 epochs of 8 steps; Lightning validates once more when stopped: a partial epoch.
    assert (info.status, info.steps_done, info.epochs_done) == ("stopped", 6, 1)


def test_lightning_exception_is_a_failed_record(tmp_path):
    L = pytest.importorskip("lightning.pytorch")
    from tui_nn.integrations.lightning import TuiNNCallback

    class Broken(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            raise ValueError("bad batch")

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*_data()), batch_size=8)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False,
                        callbacks=[TuiNNCallback(tmp_path / "runs" / "bad")])
    with pytest.raises(ValueError, match="bad batch"):
        trainer.fit(Broken(), loader)
    last = _records(tmp_path / "runs" / "bad")[-1]
    assert last["type"] == "Failed" and "bad batch" in last["message"]
    assert _listed(tmp_path / "runs", "bad").status == "failed"
