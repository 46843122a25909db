"""Plain-text tables for `tui-nn models` and `tui-nn datasets` (fixed width, pipe friendly)."""

from __future__ import annotations

from tui_nn.fmt import format_shape


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out) + "\n"


def models_table() -> str:
    from tui_nn.zoo import list_models
    rows = [[s.name, s.description, format_shape(s.input_shape)
             + (" (int)" if str(s.input_dtype) == "torch.int64" else ""),
             s.default_dataset, f"{s.parameter_count():,}"] for s in list_models()]
    return _table(["model", "description", "input", "dataset", "params"], rows)


def datasets_table() -> str:
    from tui_nn.data import list_datasets
    rows = [[d.name, d.description, d.task, format_shape(d.input_shape),
             "embedded" if d.embedded else "download"] for d in list_datasets()]
    rows += [["csv:PATH", "a CSV/CSV.GZ table: last column is the target", "auto", "-", "file"],
             ["folder:PATH", "an ImageFolder tree (one subfolder per class)", "classification",
              "-", "folder"]]
    return _table(["dataset", "description", "task", "sample", "source"], rows)
