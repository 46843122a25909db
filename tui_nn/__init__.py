"""tui-nn: train and understand PyTorch models from the terminal."""

__version__ = "0.1.0"
