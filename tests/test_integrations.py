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


def _lightning_lrs(tmp_path: Path, name: str, schedule: str, scale_at: int | None) -> list:
    """The lr at the start of each of 24 steps of a Lightning fit whose scheduler steps every
    step; an lr × 0.5 request is sent through the channel at step scale_at."""
    L = pytest.importorskip("lightning.pytorch")
    from tui_nn.integrations.lightning import TuiNNCallback

    class Scheduled(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.05)
            sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=24)
                     if schedule == "onecycle" else
                     torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=24, eta_min=0.01))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    lrs = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, *args):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == scale_at:
                assert send(callback.run.path, "lr", factor=0.5)["ok"]

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*_data()), batch_size=8)
    callback = TuiNNCallback(tmp_path / "runs" / name, report_interval_s=0.0)
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path,
                        num_sanity_val_steps=0, callbacks=[Record(), callback])
    trainer.fit(Scheduled(), loader)
    return lrs


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_lightning_lr_change_survives_the_scheduler(tmp_path, schedule):
    """A halved lr stays halved at every later scheduler step (OneCycleLR derives each lr
    from max_lr/initial_lr/min_lr, cosine from base_lrs and eta_min): the whole rest of the
    schedule is the unscaled one × 0.5."""
    plain = _lightning_lrs(tmp_path, "plain", schedule, None)
    scaled = _lightning_lrs(tmp_path, "scaled", schedule, 4)
    assert len(plain) == len(scaled) == 24
    assert scaled[:4] == pytest.approx(plain[:4])
    assert scaled[5:] == pytest.approx([0.5 * lr for lr in plain[5:]], rel=1e-9)


# ---- Hugging Face -------------------------------------------------------------------------------
class _Pairs(torch.utils.data.Dataset):
    """(x, labels) rows as the Trainer's default collator wants them."""

    def __init__(self, n: int = 64):
        self.x, self.y = _data(n)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


class _TinyRegressor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(4, 1)

    def forward(self, x, labels=None):
        out = self.net(x)  # (B, 1)
        loss = torch.nn.functional.mse_loss(out, labels) if labels is not None else None
        return {"loss": loss, "logits": out}


def _hf_train(tmp_path: Path, epochs: int, requests: dict[int, str] | None = None, *,
              name: str = "hf", resume: str | None = None, **args):
    transformers = pytest.importorskip("transformers")
    from tui_nn.integrations.huggingface import TuiNNCallback

    class Steer(transformers.TrainerCallback):  # before TuiNNCallback in the same step end
        def on_step_end(self, args, state, control, **kwargs):
            _steer_at(callback.run.path, state.global_step, requests or {})

    callback = TuiNNCallback(tmp_path / "runs" / name, report_interval_s=0.0)
    targs = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=epochs, per_device_train_batch_size=8,
        per_device_eval_batch_size=16, learning_rate=0.05, logging_steps=2,
        eval_strategy="epoch", save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, dataloader_num_workers=0, seed=0, **args)
    trainer = transformers.Trainer(model=_TinyRegressor(), args=targs, train_dataset=_Pairs(),
                                   eval_dataset=_Pairs(32), callbacks=[Steer(), callback])
    trainer.train(resume_from_checkpoint=resume)
    return tmp_path / "runs" / name, trainer


def test_huggingface_training_is_a_run_that_runs_lists(tmp_path):
    run, _ = _hf_train(tmp_path, epochs=2)
    info = _listed(tmp_path / "runs", "hf")
    assert (info.status, info.model, info.steps_done, info.epochs_done) == (
        "finished", "_TinyRegressor", 16, 2)
    assert info.steps_total == 16
    records = _records(run)
    steps = [r for r in records if r["type"] == "StepMetrics"]
    logged = [s for r in steps for s in range(r["first_step"], r["step"] + 1)]
    assert logged == list(range(1, 17))  # the Trainer's global steps, each once
    assert "grad_norm" in steps[0]["scalars"] and 0 < steps[0]["lr"] <= 0.05
    epochs = [r for r in records if r["type"] == "EpochMetrics"]
    assert epochs[1]["val_loss"] < epochs[0]["val_loss"]  # eval_loss, learning
    cli = subprocess.run([sys.executable, "-m", "tui_nn", "runs", "--root",
                          str(tmp_path / "runs"), "--json"], capture_output=True, text=True)
    [listed] = json.loads(cli.stdout)
    assert {k: listed[k] for k in ("name", "status", "steps_done", "epochs_done", "device")} == {
        "name": "hf", "status": "finished", "steps_done": 16, "epochs_done": 2, "device": "cpu"}


def test_huggingface_is_paused_checkpointed_and_stopped_from_outside(tmp_path):
    run, trainer = _hf_train(tmp_path, epochs=50, requests={2: "pause", 3: "lr",
                                                          4: "checkpoint", 6: "stop"})
    records = _records(run)
    assert [r["state"] for r in records if r["type"] == "StateChanged"] == ["paused", "running"]
    [scaled] = [r for r in records if r["type"] == "LrScaled"]
    assert scaled["factor"] == 0.5
    last_lr = [r for r in records if r["type"] == "StepMetrics"][-1]["lr"]
    assert 0.02 < last_lr < 0.026  # the schedule kept the change (0.05 decaying, halved)
    [saved] = [r for r in records if r["type"] == "CheckpointSaved"]
    assert saved["reason"] == "requested" and saved["path"].endswith("checkpoint-4")
    assert Path(saved["path"]).is_dir() and any(Path(saved["path"]).iterdir())
    assert records[-1]["type"] == "Finished" and records[-1]["status"] == "stopped"
    info = _listed(tmp_path / "runs", "hf")
    assert (info.status, info.steps_done) == ("stopped", 6)  # of 50 epochs of 8 steps
    assert trainer.state.global_step == 6

    # Resumed from that checkpoint (a new run directory), the steps go on from the Trainer's.
    run, _ = _hf_train(tmp_path, epochs=2, name="hf-resumed", resume=saved["path"])
    steps = [r for r in _records(run) if r["type"] == "StepMetrics"]
    assert [s for r in steps for s in range(r["first_step"], r["step"] + 1)] == list(range(5, 17))


def test_huggingface_crash_inside_the_callback_block_is_a_failed_record(tmp_path):
    pytest.importorskip("transformers")
    from tui_nn.integrations.huggingface import TuiNNCallback

    with pytest.raises(RuntimeError, match="out of data"):
        with TuiNNCallback(tmp_path / "runs" / "crash") as callback:
            _hf_train_crashing(tmp_path, callback)
    last = _records(tmp_path / "runs" / "crash")[-1]
    assert last["type"] == "Failed" and "out of data" in last["message"]
    assert _listed(tmp_path / "runs", "crash").status == "failed"


def _hf_train_crashing(tmp_path: Path, callback) -> None:
    import transformers

    class Crash(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise RuntimeError("out of data")

    targs = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=1, per_device_train_batch_size=8,
        report_to=[], use_cpu=True, disable_tqdm=True, save_strategy="no")
    transformers.Trainer(model=_TinyRegressor(), args=targs, train_dataset=_Pairs(),
                         callbacks=[callback, Crash()]).train()
