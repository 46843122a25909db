"""tui-nn: train and understand PyTorch models from the terminal.

`tui_nn.Run` logs any training loop into a run directory that `tui-nn runs`, `watch` and
`control` understand (tui_nn/run.py). Importing tui_nn loads no torch, textual or rich."""

from tui_nn.version import __version__

__all__ = ["Run", "__version__"]


def __getattr__(name: str):
    if name == "Run":
        from tui_nn.run import Run
        return Run
    raise AttributeError(f"module 'tui_nn' has no attribute {name!r}")
