"""The GAN's training step, as a step plugin (engine/plugins.py): two networks, two optimizers.

Each batch: D learns to call real images real and G's images fake (G's output detached, so
only D moves), then G learns to make D call its images real (the non-saturating loss of the
DCGAN paper). The run's optimizer (engine/prepared.py) is D's (the one the controls scale
and the schedule drives); G's optimizer follows its lr and is checkpointed through
``state_dict``. Noise comes
from the plugin's own generator (checkpointed too), so a resumed run draws what an
uninterrupted one would have.

Validation: D's accuracy at telling validation images from as many fakes (0.5 means G fools
it), and D's loss on them. After each epoch, when the run asks for images
(``val_predictions``: the app does), G's pictures of a fixed noise batch go out as a
GeneratedSamples event: the same 16 noise vectors every epoch, so the grid shows G learning.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from tui_nn.engine import events as ev
from tui_nn.engine.optim import build_optimizer, build_schedule
from tui_nn.engine.errors import TrainingError
from tui_nn.engine.validation import validation_batch_size
from tui_nn.modelmode import in_mode

GRID_SIZE = 16  # generated images per epoch in the Insight view
_FIXED_NOISE_SEED = 1234  # the grid's noise: the same whatever --seed says
_EVAL_NOISE_SEED = 4321
# DCGAN's Adam beta1: the default 0.9 carries momentum across a game whose target moves
# every step, which oscillates; 0.5 is the paper's setting.
_ADAM_BETAS = (0.5, 0.999)


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


class GANStep:
    """Step plugin for tui_nn.zoo.gan.GAN (any 1×H×W image set; labels are ignored)."""

    metric = "d_accuracy"  # D's, named so: 0.5 is a G that fools it, not a worse model

    def __init__(self) -> None:
        self.run: Any = None
        self.g_optimizer: torch.optim.Optimizer | None = None
        self.noise_gen: torch.Generator | None = None

    # ---- setup -------------------------------------------------------------------------------
    def setup(self, run: Any) -> None:
        if run.dist.enabled:
            raise TrainingError("the GAN trains in one process: run it without torchrun",
                                "usage")
        if run.train_x.dim() != 4:
            raise TrainingError(f"the GAN needs images (got samples of shape "
                                f"{tuple(run.train_x.shape[1:])})", "shape")
        self.run, model = run, run.model
        # Real images may be normalised to any range: G's tanh is stretched onto it.
        x = run.train_x  # (N, C, H, W), uint8 or float
        # Per channel, normalising is increasing: the range of the inputs is that of the ends.
        ends = torch.stack([x.amin(dim=(0, 2, 3)), x.amax(dim=(0, 2, 3))])  # (2, C)
        ends = run.inputs(ends[:, :, None, None])  # (2, C, 1, 1)
        model.set_data_range(float(ends[0].min()), float(ends[1].max()))
        cfg = run.config
        run.optimizer = self._optimizer(model.discriminator)
        run.scheduler = build_schedule(run.optimizer, cfg, run.steps_per_epoch, run.total_steps)
        self.g_optimizer = self._optimizer(model.generator)
        self.noise_gen = torch.Generator(device=run.device).manual_seed(cfg.seed + 1)

    def _optimizer(self, net: torch.nn.Module) -> torch.optim.Optimizer:
        opt = build_optimizer(net, self.run.config)
        if isinstance(opt, torch.optim.Adam):
            for group in opt.param_groups:
                group["betas"] = _ADAM_BETAS
        return opt

    # ---- the step ----------------------------------------------------------------------------
    def train_step(self, xb: torch.Tensor, yb: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        t, m = self.run, self.run.model
        d_opt, g_opt = t.optimizer, self.g_optimizer
        fake = m.generate(m.noise(xb.shape[0], self.noise_gen))  # (B, 1, 28, 28)
        # D: real -> 1, fake -> 0. The fakes are detached: this half moves D only.
        d_loss = _bce(m.discriminator(xb), True) + _bce(m.discriminator(fake.detach()), False)
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        # G: make the (just updated) D call the same fakes real. D's gradients from this
        # backward are cleared by D's zero_grad next step, never applied.
        g_loss = _bce(m.discriminator(fake), True)
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        for group in g_opt.param_groups:  # G follows D's lr: schedules and lr controls
            group["lr"] = d_opt.param_groups[0]["lr"]
        g_opt.step()
        if t.scheduler is not None:
            t.scheduler.step()
        d_loss, g_loss = d_loss.detach(), g_loss.detach()
        return d_loss + g_loss, {"d_loss": d_loss, "g_loss": g_loss}

    def probe_loss(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Eval mode: batch norm's running statistics (part of a resume's state) stay put."""
        m = self.run.model
        gen = torch.Generator(device=xb.device).manual_seed(0)  # the run's RNGs untouched
        with in_mode(m, training=False):
            fake = m.generate(m.noise(xb.shape[0], gen, xb.device))  # (b, 1, 28, 28)
            return _bce(m.discriminator(xb), True) + _bce(m.discriminator(fake), False)

    # ---- validation and the grid -------------------------------------------------------------
    def evaluate(self) -> tuple[float, float, str | None]:
        """(D's loss on validation images + as many fakes, D's accuracy on them, None)."""
        t, m = self.run, self.run.model
        gen = torch.Generator(device=t.device).manual_seed(_EVAL_NOISE_SEED)
        loss = torch.zeros((), device=t.device)
        correct = torch.zeros((), device=t.device)
        n, vbs = t.val_x.shape[0], validation_batch_size(t.config, t.device)
        with in_mode(m, training=False), torch.inference_mode():
            for s in range(0, n, vbs):
                real = t.inputs(t.val_x[s:s + vbs])  # (b, 1, 28, 28)
                fake = m.generate(m.noise(real.shape[0], gen))
                d_real, d_fake = m.discriminator(real), m.discriminator(fake)  # (b, 1) each
                loss += (_bce(d_real, True) + _bce(d_fake, False)) * real.shape[0]
                correct += (d_real > 0).sum() + (d_fake <= 0).sum()
        return float(loss) / max(n, 1), float(correct) / max(2 * n, 1), None

    def after_epoch(self, epoch: int, step: int) -> None:
        t = self.run
        if not t.config.val_predictions:
            return
        from tui_nn.insight.gan import generated_images
        gen = torch.Generator(device=t.device).manual_seed(_FIXED_NOISE_SEED)
        z = t.model.noise(GRID_SIZE, gen)  # (16, noise_dim): the same every epoch
        t.emit(ev.GeneratedSamples(epoch=epoch, step=step,
                                   images=tuple(generated_images(t.model, z))))

    # ---- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"g_optimizer": self.g_optimizer.state_dict(),
                "noise_gen": self.noise_gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g_optimizer.load_state_dict(state["g_optimizer"])
        self.noise_gen.set_state(state["noise_gen"])
