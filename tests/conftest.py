import os
from pathlib import Path

# Generated datasets are cached; keep the tests' cache out of the user's home.
os.environ.setdefault("TUI_NN_CACHE", str(Path(__file__).parent.parent / ".pytest-cache-data"))

