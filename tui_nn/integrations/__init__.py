"""Callbacks that log a framework's training into a tui-nn run directory (thin layers on
tui_nn.Run), so `tui-nn runs`, `watch` and `control` work on a Lightning or Hugging Face run:

    from tui_nn.integrations.lightning import TuiNNCallback      # pip install "tui-nn[lightning]"
    from tui_nn.integrations.huggingface import TuiNNCallback    # pip install "tui-nn[huggingface]"

Each module imports its framework at the top (they are opt-in); this package imports nothing."""
