"""The lesson views (activation functions, loss landscape, sequence models, autograd graph),
driven by Pilot with real tiny computation on the CPU."""

from __future__ import annotations

import math

import pytest

from tui_nn.tui.app import make_app
from demo import select_model, settle
from tui_nn.tui.screens.lessons import LESSONS, open_lesson
from pilot_helpers import SIZE, wait_for


async def open_from_palette(pilot, title: str):
    """Open a view as a user would: ctrl+p, type part of its title, Enter."""
    await pilot.press("ctrl+p")
    await pilot.pause(0.2)
    await pilot.press(*title)
    await pilot.pause(0.5)
    await pilot.press("enter")
    await pilot.pause(0.3)


def plot_text(widget) -> str:
    return widget.render().plain


def shown(static) -> str:
    """The text a Static shows, markup removed."""
    return static.visual.plain


def test_every_lesson_view_is_in_the_command_palette():
    app = make_app()
    titles = {c.title for c in app.get_system_commands(app.main)}
    for title, _, _ in LESSONS:
        assert title in titles


# ---- activation functions ---------------------------------------------------------------------
@pytest.mark.asyncio
async def test_activation_view_plots_all_seven_and_their_derivatives():
    from tui_nn.insight.activations import ACTIVATIONS, activation_curves
    from tui_nn.commands.plot_cmd import activations_text
    from tui_nn.tui.screens.activations import ActivationsScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_from_palette(pilot, "activation func")
        screen = app.screen
        assert isinstance(screen, ActivationsScreen)
        await wait_for(pilot, lambda: len(screen.curves) == 7, what="curves")
        await pilot.pause(0.1)
        plot = screen.query_one("#act-plot")
        text = plot_text(plot)
        assert len(ACTIVATIONS) == 7
        for name in ACTIVATIONS:  # every function is in the legend and the table
            assert name in text
        table = screen.query_one("#act-table")
        assert table.row_count == 7
        assert {name for name, field in screen.drawn} == set(ACTIVATIONS)
        assert {field for _, field in screen.drawn} == {"y"}
        # The same curves as `tui-nn plot activations` (same grid, same values).
        reference = {c.name: c for c in activation_curves()}
        for c in screen.curves:
            assert c.x == reference[c.name].x and c.y == reference[c.name].y
        assert all(name in activations_text(False, 100, 30, False) for name in ACTIVATIONS)
        sigmoid = next(c for c in screen.curves if c.name == "sigmoid")
        assert sigmoid.max_slope == pytest.approx(0.25, abs=1e-3)

        await pilot.press("d")  # derivatives
        assert screen.mode == "df"
        await pilot.pause(0.1)
        assert {field for _, field in screen.drawn} == {"dy"}
        assert "derivatives" in plot_text(plot)
        await pilot.press("d")  # both
        await pilot.pause(0.1)
        assert {field for _, field in screen.drawn} == {"y", "dy"}
        await pilot.press("3")  # relu off
        await pilot.pause(0.1)
        assert "relu" not in {name for name, _ in screen.drawn}
        assert "leaky_relu" in {name for name, _ in screen.drawn}
        await pilot.press("a")
        await pilot.pause(0.1)
        assert "relu" in {name for name, _ in screen.drawn}
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.screen is app.main


# ---- loss landscape ---------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_landscape_animates_and_gd_ends_near_w_2():
    from tui_nn.tui.screens.landscape import LandscapeScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_from_palette(pilot, "landscape")
        screen = app.screen
        assert isinstance(screen, LandscapeScreen)
        assert screen.lr == 0.01 and screen.epochs == 100
        # The animation runs by itself.
        await wait_for(pilot, lambda: screen.t >= 3, 10, "the animation")
        await pilot.press("space")  # pause
        assert not screen.playing
        t = screen.t
        await pilot.pause(0.4)
        assert screen.t == t
        await pilot.press("n")
        assert screen.t == t + 1
        await pilot.press("b")
        assert screen.t == t
        await pilot.press("e")  # to the end: epoch 100
        await pilot.pause(0.1)
        assert screen.t == 100
        w, _, loss = screen.at("gd")
        assert w == pytest.approx(2.0, abs=1e-3) and loss < 1e-6
        rows = {r[0]: r for r in screen.table_rows()}
        assert float(rows["GD"][2]) == pytest.approx(2.0, abs=1e-3)
        assert "GD w=2.000" in plot_text(screen.query_one("#land-plot"))
        assert "epoch 100/100" in shown(screen.query_one("#land-status"))
        # SGD and mini-batch also arrive near 2 (the seed's lesson: all three get there).
        for m in ("sgd", "minibatch"):
            assert screen.at(m)[0] == pytest.approx(2.0, abs=0.02)

        await pilot.press("r")  # restart plays from epoch 0 (frames pass meanwhile)
        assert screen.t < 50 and screen.playing
        await pilot.press("e")
        await pilot.press("plus")  # a larger lr: new paths, played from the start
        assert screen.lr == 0.02 and screen.t < 50 and screen.playing
        await pilot.press("e")
        assert screen.at("gd")[0] == pytest.approx(2.0, abs=1e-6)

        await pilot.press("v")  # the w×b heat map: y = w·x + b
        await pilot.pause(0.1)
        assert screen.view == "heat"
        heat = screen.query_one("#land-heat")
        assert heat.display and not screen.query_one("#land-plot").display
        text = heat.text()
        assert "G" in text and "+" in text  # GD's position, the minimum
        w, b, _ = screen.at("gd")
        assert math.isfinite(w) and math.isfinite(b)
        assert rows["GD"][3] == "-"  # the w-only model has no b column
        assert screen.table_rows()[0][3] != "-"
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.screen is app.main


# ---- sequence models --------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_sequence_view_decodes_ohlol_and_fills_the_long_range_table():
    from tui_nn.tui.screens.sequences import SequenceScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = SequenceScreen(long_options=dict(lengths=(5,), epochs=1, n_train=64),
                                grad_length=20)
        app.push_screen(screen)
        await pilot.pause(0.05)
        # Asked for while the char RNN trains: the table waits for it (one computation at a
        # time keeps the numbers reproducible).
        await pilot.press("l")
        assert screen._long_pending or screen.long_running or screen.long_table is not None
        await wait_for(pilot, lambda: not screen.char_running and screen.char_rows,
                       60, "the char RNN")
        table = screen.query_one("#char-table")
        assert table.row_count == 15
        decoded = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert decoded[-1] == "ohlol"
        assert decoded[0] != "ohlol"  # it had to learn it
        assert "ohlol" in shown(screen.query_one("#char-status"))

        await wait_for(pilot, lambda: screen.grads is not None, 30, "timestep gradients")
        grads = screen.grads
        assert grads["rnn"].first_over_last < 1e-2  # vanishes over 20 steps
        assert grads["lstm"].first_over_last > grads["rnn"].first_over_last
        assert "RNN" in shown(screen.query_one("#grad-view"))

        await wait_for(pilot, lambda: screen.long_table is not None, 120,
                       "the long-range table")
        assert screen.long_table is not None and screen.long_table.complete
        long = screen.query_one("#long-table")
        row = [str(c) for c in long.get_row("5")]
        assert row[0] == "5" and all(c.endswith("%") for c in row[1:])
        assert screen.query_one("#long-progress").progress == 3

        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.screen is app.main


# ---- autograd graph ---------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_autograd_view_shows_the_selected_models_grad_fn_chain():
    from tui_nn.tui.screens.autograd import AutogradScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select_model(pilot, "linear")
        await open_from_palette(pilot, "autograd graph")
        screen = app.screen
        assert isinstance(screen, AutogradScreen)
        await wait_for(pilot, lambda: screen.graph is not None, 30, "the graph")
        labels = screen.labels()
        assert labels[0] == "MseLossBackward0"  # the loss's grad_fn is the root
        assert any(lbl.startswith("AddmmBackward0") for lbl in labels)
        assert "AccumulateGrad linear.weight (1×1)" in labels
        assert "AccumulateGrad linear.bias (1)" in labels
        assert "mse_loss" in shown(screen.query_one("#ag-info"))
        await pilot.press("escape")
        await pilot.pause(0.1)

        await select_model(pilot, "cnn")  # another model: cross-entropy, convolutions
        open_lesson(app, "autograd")
        await pilot.pause(0.1)
        screen = app.screen
        await wait_for(pilot, lambda: screen.graph is not None, 30, "the cnn graph")
        labels = screen.labels()
        assert labels[0] == "NllLossBackward0"
        assert any(lbl.startswith("ConvolutionBackward0") for lbl in labels)
        assert any("conv1.weight (10×1×5×5)" in lbl for lbl in labels)
        tree = screen.query_one("#ag-tree")
        await pilot.press("c")
        assert not any(n.is_expanded for n in tree.root.children)
        await pilot.press("e")
        assert all(n.is_expanded for n in tree.root.children if n.children)


@pytest.mark.asyncio
async def test_autograd_view_for_token_models_and_without_a_model():
    from tui_nn.tui.screens.autograd import AutogradScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select_model(pilot, "rnn")  # int64 token ids, a (B, T, V) output
        open_lesson(app, "autograd")
        await pilot.pause(0.1)
        screen = app.screen
        await wait_for(pilot, lambda: screen.graph is not None or "red" in str(
            screen.query_one("#ag-info").content), 30, "the rnn graph")
        assert screen.graph is not None
        labels = screen.labels()
        assert any(lbl.startswith("EmbeddingBackward0") for lbl in labels)
        assert any("emb.weight" in lbl for lbl in labels)
        await pilot.press("escape")

        empty = AutogradScreen(None)
        app.push_screen(empty)
        await pilot.pause(0.2)
        assert "No model selected" in shown(empty.query_one("#ag-info"))


def test_example_loss_is_the_loss_of_the_models_task():
    from torch import nn

    from tui_nn.insight.autograd import example_loss, grad_fn_tree
    from tui_nn.zoo.registry import get_model_spec

    def root(name: str) -> str:
        spec = get_model_spec(name)
        loss = example_loss(spec.build(), spec.input_shape, dtype=spec.input_dtype,
                            dataset=spec.default_dataset)
        assert loss.loss.dim() == 0 and loss.loss.requires_grad
        return grad_fn_tree(loss.loss).root.name

    assert root("linear") == "MseLossBackward0"  # regression
    assert root("logistic") == "BinaryCrossEntropyBackward0"  # binary
    assert root("cnn") == "NllLossBackward0"  # classification: log_softmax + nll
    assert root("rnn") == "NllLossBackward0"  # sequence: int64 ids below the vocabulary
    # No dataset known: a (B, C) output is a classifier, anything else gets MSE.
    loss = example_loss(nn.Linear(3, 4), (3,))
    assert "cross_entropy" in loss.what
    loss = example_loss(nn.Linear(3, 1), (3,))
    assert "mse_loss" in loss.what and loss.loss.grad_fn.name() == "MseLossBackward0"

    class ReturnsDict(nn.Module):
        def forward(self, x):
            return {"out": x}

    with pytest.raises(TypeError, match="dict"):  # shown in the view as the error line
        example_loss(ReturnsDict(), (3,))


@pytest.mark.asyncio
async def test_autograd_view_for_a_model_opened_from_a_file(tmp_path):
    source = tmp_path / "my_model.py"
    source.write_text(
        "from torch import nn\n\n"
        "class Declared(nn.Module):\n"
        "    input_shape = (6,)\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.hidden = nn.Linear(6, 5)\n"
        "        self.out = nn.Linear(5, 3)\n"
        "    def forward(self, x):\n"
        "        return self.out(self.hidden(x).tanh())\n\n"
        "class Undeclared(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.proj = nn.Linear(7, 1)\n"
        "    def forward(self, x):\n"
        "        return self.proj(x).sigmoid()\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        name = f"{source}:Declared"
        app.main._open_source(name)
        await wait_for(pilot, lambda: app.main.model_source == name, 30, "the model")
        open_lesson(app, "autograd")
        await pilot.pause(0.1)
        screen = app.screen
        await wait_for(pilot, lambda: screen.graph is not None, 30, "the graph")
        labels = screen.labels()
        assert labels[0] == "NllLossBackward0"  # a (B, 3) output: a classifier
        assert any(lbl.startswith("TanhBackward0") for lbl in labels)
        assert "AccumulateGrad hidden.weight (5×6)" in labels
        assert "AccumulateGrad out.bias (3)" in labels
        await pilot.press("escape")

        # No declared input shape: the one typed in the shape inspector.
        name = f"{source}:Undeclared"
        app.main._open_source(name)
        await wait_for(pilot, lambda: app.main.model_source == name, 30, "the second model")
        inspector = app.main.query_one("#inspector")
        inspector.input_text = "7"
        await wait_for(pilot, lambda: inspector.inspection is not None
                       and inspector.inspection.model_name.endswith("Undeclared")
                       and not inspector.pending, 30, "the inspection")
        open_lesson(app, "autograd")
        await pilot.pause(0.1)
        screen = app.screen
        await wait_for(pilot, lambda: screen.graph is not None, 30, "the graph")
        labels = screen.labels()
        assert labels[0] == "MseLossBackward0"  # one output, no task known
        assert any(lbl.startswith("SigmoidBackward0") for lbl in labels)
        assert "AccumulateGrad proj.weight (1×7)" in labels


def test_autograd_labels_show_a_models_parameter_names_as_data():
    from rich.text import Text

    from tui_nn.insight.autograd import GradNode
    from tui_nn.tui.screens.autograd import _label

    node = GradNode(1, "AccumulateGrad", param="w\x1b]0;PWNED\x07[b]x[/b]", shape=(2,))
    shown = Text.from_markup(_label(node)).plain
    assert "\x1b" not in shown and "\x07" not in shown and "[b]x[/b]" in shown
