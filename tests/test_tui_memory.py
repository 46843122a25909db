"""The Model tab's training-memory line follows the selected model and the form's batch size and
optimizer (issue 17)."""

from __future__ import annotations

from test_tui import SIZE, ready, wait_for

from tui_nn.tui.app import make_app


async def test_memory_line_follows_the_form():
    app = make_app(model="cnn")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        line = app.main.query_one("#memory-line")
        await wait_for(pilot, lambda: line.estimate is not None, what="first estimate")
        first = line.estimate
        assert (first.batch_size, first.optimizer) == (64, "momentum")  # cnn's defaults
        assert "training batch 64, momentum: 3.3 MiB" in str(line.render())
        # The form's batch size and optimizer change: a new estimate for them.
        form = app.main.query_one("#form")
        form.query_one("#batch-size").value = "256"
        form.query_one("#optimizer").value = "adam"
        await wait_for(pilot, lambda: line.estimate is not first
                       and line.estimate.batch_size == 256
                       and line.estimate.optimizer == "adam", what="estimate at 256, adam")
        second = line.estimate
        assert second.optimizer_state == 2 * first.optimizer_state + 4 * 6  # 6 tensors' steps
        assert 3.5 * first.activations < second.activations < 4.5 * first.activations
