"""The GAN of `tui-nn train gan`, as a hand-written training loop logged with `tui_nn.Run`.

The reference example for the logging API: the loop is yours (two networks, two optimizers:
something tui-nn's own Trainer would need a plugin for), and `tui_nn.Run` writes the same run
directory as `tui-nn train`, so everything else works on it unchanged:

    python examples/gan_loop.py --epochs 2 --run-dir runs/gan-loop
    tui-nn watch runs/gan-loop        # loss, D and G curves live; p / c / x steer the loop
    tui-nn control runs/gan-loop pause|resume|checkpoint|stop
    tui-nn runs

The networks are tui-nn's zoo GAN (tui_nn/zoo/gan.py) on the embedded `digits` set
(generated on the spot, no download). At the end the generator's pictures of a fixed noise
batch are printed in half blocks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

import tui_nn
from tui_nn.data import load_dataset
from tui_nn.insight.classify import half_block_text
from tui_nn.zoo.gan import GAN


def bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def train_step(gan: GAN, real: torch.Tensor, d_opt, g_opt) -> tuple[torch.Tensor, torch.Tensor]:
    """D learns real -> 1, fake -> 0 (fakes detached), then G learns to make D say 1."""
    fake = gan.generate(gan.noise(real.shape[0]))  # (B, 1, 28, 28)
    d_loss = bce(gan.discriminator(real), True) + bce(gan.discriminator(fake.detach()), False)
    d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    d_opt.step()
    g_loss = bce(gan.discriminator(fake), True)
    g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    g_opt.step()
    return d_loss.detach(), g_loss.detach()  # 0-d tensors: tui_nn.Run reads them in chunks


@torch.inference_mode()
def d_accuracy(gan: GAN, val_x: torch.Tensor, batch: int = 2048) -> tuple[float, float]:
    """D's loss and accuracy on validation images and as many fakes (0.5: G fools D)."""
    gan.eval()
    loss, correct = 0.0, 0
    for s in range(0, val_x.shape[0], batch):
        real = val_x[s:s + batch]
        d_real = gan.discriminator(real)  # (b, 1)
        d_fake = gan.discriminator(gan.generate(gan.noise(real.shape[0])))  # (b, 1)
        loss += float(bce(d_real, True) + bce(d_fake, False)) * real.shape[0]
        correct += int((d_real > 0).sum() + (d_fake <= 0).sum())
    gan.train()
    n = val_x.shape[0]
    return loss / n, correct / (2 * n)


def save(gan: GAN, d_opt, g_opt, epoch: int, path: Path) -> Path:
    torch.save({"gan": gan.state_dict(), "d_optimizer": d_opt.state_dict(),
                "g_optimizer": g_opt.state_dict(), "epoch": epoch}, path)
    return path


def show_generated(gan: GAN, z: torch.Tensor) -> None:
    gan.eval()
    with torch.inference_mode():
        images = gan.to_unit(gan.generate(z)).cpu()[:, 0]  # (N, 28, 28) in [0, 1]
    gan.train()
    pictures = [half_block_text(img, width=16) for img in images]  # 8 lines of 16 cells
    for start in range(0, len(pictures), 4):
        row = pictures[start:start + 4]
        for lines in zip(*row):
            print("  ".join(lines))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--limit", type=int, default=0, help="train on the first N images only")
    p.add_argument("--run-dir", default=None, help="default: runs/<time>-gan-loop-digits")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ds = load_dataset("digits")  # (N, 1, 28, 28) in [0, 1]
    train_x = (ds.train_x[:args.limit] if args.limit else ds.train_x).to(device)
    val_x = ds.val_x[:max(args.limit // 4, 1)].to(device) if args.limit else ds.val_x.to(device)
    gan = GAN().to(device)
    gan.set_data_range(0.0, 1.0)  # G's tanh stretched onto the data's pixel range
    # Adam with beta1 = 0.5, as in the DCGAN paper: the target moves every step.
    d_opt = torch.optim.Adam(gan.discriminator.parameters(), lr=args.lr, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(gan.generator.parameters(), lr=args.lr, betas=(0.5, 0.999))
    fixed = gan.noise(16, torch.Generator(device).manual_seed(1234))  # (16, 64)
    n, bs = train_x.shape[0], args.batch_size
    steps = (n + bs - 1) // bs

    with tui_nn.Run(args.run_dir, model="gan-loop", dataset="digits", config=vars(args),
                    metric="accuracy", epochs=args.epochs, steps_per_epoch=steps,
                    batch_size=bs, optimizer=[d_opt, g_opt]) as run:  # l halves both lrs
        for epoch in range(args.epochs):
            perm = torch.randperm(n, device=device)  # (N,)
            for i in range(steps):
                d_loss, g_loss = train_step(gan, train_x[perm[i * bs:(i + 1) * bs]], d_opt,
                                            g_opt)
                run.log_step(loss=d_loss + g_loss, d_loss=d_loss, g_loss=g_loss)
                run.wait_while_paused()  # returns at once unless paused from watch/control
                if run.stop_requested:
                    break
                if run.checkpoint_requested:
                    run.checkpoint_saved(save(gan, d_opt, g_opt, epoch,
                                              run.path / "ckpt.pt"))
            if run.stop_requested:
                break
            val_loss, accuracy = d_accuracy(gan, val_x)
            run.log_epoch(val_loss=val_loss, accuracy=accuracy)
            print(f"epoch {epoch + 1}: D's val loss {val_loss:.3f}, "
                  f"D tells real from fake {accuracy:.1%}")
        run.checkpoint_saved(save(gan, d_opt, g_opt, run.epoch, run.path / "ckpt.pt"))
    show_generated(gan, fixed)
    print(f"run directory: {run.path}")


if __name__ == "__main__":
    main()
