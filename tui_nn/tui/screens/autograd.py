"""The autograd graph of the selected model's loss as a collapsible tree: what the seed prints
one level at a time with ``loss.grad_fn.next_functions[0][0]``, unfolded down to the
parameters (AccumulateGrad leaves, labelled with their names and shapes).

The model is the one selected in the picker: built on the CPU (zoo models fresh, opened
models as loaded), one forward on a batch of 2 samples of its default input shape, and the
loss its dataset's task uses (insight.autograd.example_loss). That runs on a thread worker;
the tree is filled when it arrives. Keys: e expand all, c collapse all, r rebuild (after
picking another model), Enter/Space toggle a node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Footer, Header, Static, Tree

from tui_nn.textsafe import first_line
from tui_nn.tui.markup import markup_data
from tui_nn.tui.screens.lesson_base import LessonScreen

if TYPE_CHECKING:
    from tui_nn.insight.autograd import GradNode, GradTree

BATCH = 2
EXPAND_ALL_UP_TO = 80  # nodes: small graphs open fully, larger ones to OPEN_DEPTH levels
OPEN_DEPTH = 4


@dataclass
class GraphReady(Message):
    source: str | None
    tree: "GradTree | None"
    what: str
    error: str | None
    seconds: float = 0.0


class AutogradScreen(LessonScreen):
    """loss.grad_fn and its next_functions, all the way to the parameters."""

    DEFAULT_CSS = """
    AutogradScreen #ag-info { height: auto; padding: 0 1; }
    AutogradScreen #ag-tree { height: 1fr; }
    AutogradScreen #ag-node { height: auto; padding: 0 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("e", "expand_all", "Expand all"),
        Binding("c", "collapse_all", "Collapse"),
        Binding("r", "rebuild", "Rebuild"),
    ]

    def __init__(self, source: str | None = None, *, main: Any = None) -> None:
        super().__init__()
        self.source = source
        self.main = main
        self.graph: GradTree | None = None
        self.what = ""

    @classmethod
    def for_main(cls, main: Any) -> "AutogradScreen":
        """The view for the model selected on the main screen (None: it says to pick one)."""
        return cls(getattr(main, "model_source", None), main=main)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        yield Static("", id="ag-info")
        yield Tree("loss", id="ag-tree")
        yield Static("", id="ag-node")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "autograd graph"
        self.query_one("#ag-tree", Tree).focus()
        self._start()

    def action_rebuild(self) -> None:
        if self.main is not None:
            self.source = getattr(self.main, "model_source", None)
        self._start()

    def _start(self) -> None:
        info = self.query_one("#ag-info", Static)
        if self.source is None:
            info.update("No model selected: pick one in the model picker (Escape, 1), then "
                        "open this view again.")
            return
        info.update(f"[b]{markup_data(self.source)}[/]: building the graph on the CPU…")
        self._build(self.source, *self._model_inputs(self.source))

    def _model_inputs(self, source: str) -> tuple[Any, str, str | None]:
        """(an already-loaded model or None, its input text, dataset) from the
        main screen's catalog; zoo models are rebuilt from the zoo on the worker.

        An opened model that declares no input shape takes the one the shape inspector
        traced it with (the user typed it there), without its batch dimension."""
        main = self.main
        entry = getattr(main, "entries", {}).get(source) if main is not None else None
        model = getattr(main, "user_models", {}).get(source) if main is not None else None
        text = entry.input_text if entry is not None else ""
        dataset = entry.default_dataset if entry is not None else None
        if model is not None and not text.strip():
            try:
                inspector = main.query_one("#inspector")
            except Exception:  # noqa: BLE001 - no inspector: the worker says what is missing
                inspector = None
            insp = getattr(inspector, "inspection", None)
            if insp is not None and getattr(inspector, "source", None) == source \
                    and len(insp.input_shapes) == 1 and len(insp.input_shapes[0]) > 1:
                dtype = insp.input_dtypes[0] if insp.input_dtypes else "float32"
                text = "x".join(map(str, insp.input_shapes[0][1:])) + f":{dtype}"
        return model, text, dataset

    @work(thread=True, name="autograd", group="autograd", exclusive=True, exit_on_error=False)
    def _build(self, source: str, model: Any, input_text: str, dataset: str | None) -> None:
        import time

        from tui_nn.tui.bridge import in_fresh_thread

        t0 = time.perf_counter()
        try:
            tree, what = in_fresh_thread(
                lambda: _graph(source, model, input_text, dataset), "tui-nn-autograd")
        except Exception as exc:  # noqa: BLE001 - user models can raise anything: shown
            self.post_message(GraphReady(source, None, "", first_line(exc, with_type=True)))
            return
        self.post_message(GraphReady(source, tree, what, None, time.perf_counter() - t0))

    @on(GraphReady)
    def _ready(self, event: GraphReady) -> None:
        info = self.query_one("#ag-info", Static)
        if event.error or event.tree is None:
            info.update(f"[b]{markup_data(event.source or '')}[/]: "
                        f"[red]{markup_data(event.error or '')}[/]")
            return
        self.graph = event.tree
        self.what = event.what
        tree = event.tree
        root = tree.root
        params = len(root.leaves()) if root is not None else 0
        cut = " (cut at the node cap)" if tree.truncated else ""
        info.update(f"[b]{markup_data(event.source or '')}[/]: loss = "
                    f"{markup_data(event.what)}; "
                    f"{tree.nodes} backward nodes{cut}, {params} parameter leaves. "
                    "[dim]Children are each node's next_functions.[/]")
        self._fill(root)

    def _fill(self, root: "GradNode | None") -> None:
        widget: Tree = self.query_one("#ag-tree", Tree)
        widget.clear()
        if root is None:
            widget.root.set_label("(no graph: the loss does not require grad)")
            return
        widget.root.set_label(_label(root))
        widget.root.data = (root, "loss.grad_fn")
        expand_all = self.graph is not None and self.graph.nodes <= EXPAND_ALL_UP_TO
        # Iterative: an RNN's graph is hundreds of nodes deep. Each node keeps the expression
        # that reaches it from the loss, the way the seed walks the graph by hand.
        stack = [(widget.root, child, 1, f"loss.grad_fn.next_functions[{i}][0]")
                 for i, child in reversed(list(enumerate(root.children)))]
        while stack:
            parent, node, depth, path = stack.pop()
            label = _label(node)
            if node.children:
                item = parent.add(label, data=(node, path),
                                  expand=expand_all or depth < OPEN_DEPTH)
                stack.extend((item, c, depth + 1, f"{path}.next_functions[{i}][0]")
                             for i, c in reversed(list(enumerate(node.children))))
            else:
                parent.add_leaf(label, data=(node, path))
        widget.root.expand()
        widget.move_cursor(widget.root)
        self._describe(widget.root.data)

    def labels(self) -> list[str]:
        """Every label in the tree widget, depth first (for tests and the benchmark)."""
        out = []
        stack = [self.query_one("#ag-tree", Tree).root]
        while stack:
            node = stack.pop()
            out.append(str(node.label))
            stack.extend(reversed(node.children))
        return out

    @on(Tree.NodeHighlighted, "#ag-tree")
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        self._describe(event.node.data)

    def _describe(self, data: "tuple[GradNode, str] | None") -> None:
        line = self.query_one("#ag-node", Static)
        if data is None:
            line.update("")
            return
        node, path = data
        if node.name == "AccumulateGrad":
            what = (f"backward adds the gradient into "
                    f"{markup_data(node.param or 'a leaf tensor')}.grad")
        elif node.ref:
            what = "again: a tensor used more than once, its gradients add up"
        else:
            what = f"{len(node.children)} next_functions"
        if len(path) > 2 * max(self.size.width, 40):  # deep in a big graph: the tail
            path = "…" + path[-2 * max(self.size.width, 40):]
        line.update(f"#{node.id} {markup_data(node.name)}: {what}\n[dim]{markup_data(path)}[/]")

    def action_expand_all(self) -> None:
        self.query_one("#ag-tree", Tree).root.expand_all()

    def action_collapse_all(self) -> None:
        root = self.query_one("#ag-tree", Tree).root
        root.collapse_all()
        root.expand()


def _label(node: "GradNode") -> str:
    text = markup_data(node.label)  # parameter names are the model's: data, never markup
    if node.name == "AccumulateGrad":
        return f"[green]{text}[/]"
    if node.ref:
        return f"[dim]{text}[/]"
    return f"[b]{text}[/]" if node.id == 0 else text


def _graph(source: str, model: Any, input_text: str, dataset: str | None
           ) -> tuple["GradTree", str]:
    """On a fresh thread: the model on the CPU, one forward, the loss, the tree."""
    import torch

    from tui_nn.insight.autograd import example_loss, grad_fn_tree
    from tui_nn.insight.threads import torch_threads

    dtype = torch.float32
    if model is None:
        from tui_nn.zoo.registry import get_model_spec

        spec = get_model_spec(source)
        with torch.device("cpu"):
            model = spec.build()
        sample, dtype, dataset = spec.input_shape, spec.input_dtype, spec.default_dataset
    else:
        from tui_nn.shapes.parse import parse_inputs

        if not input_text.strip():
            raise ValueError("the model's input shape is not known: type one in the shape "
                             "inspector, then press r here")
        specs = parse_inputs(input_text)
        if len(specs) != 1:
            raise ValueError("models with several inputs are not supported here")
        sample = specs[0].shape
        if specs[0].dtype:
            dtype = getattr(torch, specs[0].dtype)
        elif any(isinstance(m, torch.nn.Embedding) for m in model.modules()):
            dtype = torch.int64  # token ids, as the shape inspector guesses
    with torch_threads(1):
        loss = example_loss(model, tuple(sample), dtype=dtype, dataset=dataset, batch=BATCH)
        return grad_fn_tree(loss.loss, model), loss.what
