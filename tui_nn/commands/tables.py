"""Plain-text tables (fixed width, pipe friendly): `tui-nn models` and `tui-nn datasets` here,
`runs` and `plot` through text_table."""

from __future__ import annotations

from tui_nn.fmt import format_shape


def text_table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    """Columns as wide as their widest cell; those numbered in right are right-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]),
                      *(line(r) for r in rows)]) + "\n"


def models_table() -> str:
    from tui_nn.zoo import list_models
    rows = [[s.name, s.description, format_shape(s.input_shape)
             + (" (int)" if str(s.input_dtype) == "torch.int64" else ""),
             s.default_dataset, f"{s.parameter_count():,}"] for s in list_models()]
    return text_table(["model", "description", "input", "dataset", "params"], rows)


def datasets_table() -> str:
    from tui_nn.data import list_datasets
    rows = [[d.name, d.description, d.task, format_shape(d.input_shape),
             "embedded" if d.embedded else "download"] for d in list_datasets()]
    rows += [["csv:PATH", "a CSV/CSV.GZ table: last column is the target", "auto", "-", "file"],
             ["folder:PATH", "an ImageFolder tree (one subfolder per class)", "classification",
              "-", "folder"]]
    return text_table(["dataset", "description", "task", "sample", "source"], rows)
