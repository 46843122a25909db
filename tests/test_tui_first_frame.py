"""The app's first frame lists the zoo before torch has loaded (issue 31.11): names and
descriptions come from tui_nn.zoo.names; the rest fills in once a worker has imported torch.
benchmarks/bench_first_frame.py times it in a real terminal."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tui_nn.tui.app import make_app
from tui_nn.zoo.names import DESCRIPTIONS

from pilot_helpers import wait_for

REPO = Path(__file__).resolve().parent.parent


def test_first_frame_lists_the_zoo_without_importing_torch():
    """In a fresh interpreter, with the catalog worker held back: the list is on screen and
    torch is still not imported."""
    code = textwrap.dedent("""
        import asyncio, sys
        from tui_nn.tui.app import make_app
        from tui_nn.tui.screens.main import MainScreen

        MainScreen._load_catalog = lambda self: None  # torch never comes

        async def main():
            app = make_app()
            async with app.run_test(size=(100, 30)) as pilot:
                await pilot.pause(0.2)
                zoo = app.main.query_one("#zoo")
                print(zoo.option_count, app.main.run_state, app.main.model_source)
                await pilot.press("down", "enter")  # nothing to select yet: nothing opens
                await pilot.pause(0.2)
                print(app.main.model_source, "torch" in sys.modules)
        asyncio.run(main())
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    listed, after = out.stdout.strip().splitlines()[-2:]
    assert listed == f"{len(DESCRIPTIONS)} loading None"
    assert after == "None False"


async def test_the_catalog_then_selects_the_model_asked_for_and_inspects_it():
    app = make_app(model="cnn")
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        await wait_for(pilot, lambda: main.run_state == "idle" and main.model_source,
                       what="catalog")
        assert main.model_source == "cnn" and main.entries["cnn"].input_text == "1x28x28"
        inspector = main.query_one("#inspector")
        await wait_for(pilot, lambda: inspector.inspection is not None, what="inspection")
        assert main.query_one("#zoo").option_count == len(DESCRIPTIONS)
