"""TrainConfig's option(...) fields as Typer options: `tui-nn train` and `tui-nn tui` take their
training options from here, so an option is declared once, on its field (engine/config.py).

Choices become Enums (Typer refuses others with exit 2); the options are grouped in --help by
rich_help_panel (Data, Optimisation, Hardware, Run).

ReadableCommand and ReadableGroup (every command's class) keep --help readable at 80 columns:
a flag shows no `<bool>`, a choice shows its NAME with the choices listed in its help (Typer's
`<a|b|c>` is cut mid-word when it does not fit its column), and a help paragraph's line breaks
from the docstring are not kept (the terminal wraps it)."""

from __future__ import annotations

import enum
import functools
import inspect
import re
import typing
from dataclasses import MISSING, fields
from typing import Annotated, Any, Callable, Optional

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from tui_nn.engine.config import OPTION_FIELDS, TrainConfig

@functools.cache
def _choice_enum(name: str, choices: tuple[str, ...]) -> type[enum.Enum]:
    return enum.Enum(name.title().replace("_", ""), {c: c for c in choices}, type=str)


def _parameter(name: str, spec: dict[str, Any]) -> inspect.Parameter:
    f = next(f for f in fields(TrainConfig) if f.name == name)
    default = None if f.default is MISSING else f.default
    hint = typing.get_type_hints(TrainConfig)[name]
    base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    if spec["choices"]:
        base = _choice_enum(name, spec["choices"])
        default = None if default is None else base(default)
    flags = [spec["flag"]] + ([spec["short"]] if spec["short"] else [])
    option = typer.Option(*flags, help=spec["help"], rich_help_panel=spec["panel"],
                          metavar=spec["metavar"], show_default=default not in (None, ""))
    annotation = Annotated[Optional[base] if default is None else base, option]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)


def with_train_options() -> Callable[[Callable], Callable]:
    """Decorate a command `fn(..., options: dict)`: its signature gains one Typer option per
    TrainConfig option field, and it is called with their values gathered, Enums turned back
    into strings, in `options`. `train` and `tui` both use it, so they take the same options."""
    names = list(OPTION_FIELDS)

    def decorate(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        # The command's own annotations resolved here (its module may use postponed
        # annotations, which Typer would otherwise look up in this module).
        hints = typing.get_type_hints(fn, include_extras=True)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in sig.parameters.values() if p.name != "options"]

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            options = {n: _plain(kwargs.pop(n)) for n in names}
            return fn(**kwargs, options=options)

        params = own + [_parameter(n, OPTION_FIELDS[n]) for n in names]
        wrapper.__signature__ = sig.replace(parameters=params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper
    return decorate


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


# ---- --help at 80 columns --------------------------------------------------------------------
def _readable(param: object) -> None:
    """Once per parameter, when its command is built (see the module docstring)."""
    if not isinstance(param, (TyperOption, TyperArgument)) or param.metavar is not None:
        return
    if isinstance(param, TyperOption) and param.is_flag:
        param.metavar = ""  # a flag takes no value: no type to show
        return
    desc = param.type_descriptor
    if not (desc.is_choice and desc.choices):
        return
    names = [c.value if isinstance(c, enum.Enum) else str(c) for c in desc.choices]
    help_text = param.help or ""
    if not all(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", help_text) for n in names):
        param.help = f"{help_text} One of: {', '.join(names)}.".strip()
    if isinstance(param, TyperOption):
        param.metavar = (param.name or "").upper().replace("_", "-")
    else:  # the argument's name is shown already; its choices are in its help
        param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]


def _unwrap(text: str | None) -> str | None:
    """A docstring's single line breaks become spaces; blank lines still part paragraphs."""
    if text is None:
        return None
    return re.sub(r"(?<!\n)\n(?!\n)[ \t]*", " ", inspect.cleandoc(text))


class _Readable:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = _unwrap(self.help)
        for param in self.params:
            _readable(param)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        _readable(option)
        return option


class ReadableCommand(_Readable, TyperCommand):
    pass


class ReadableGroup(_Readable, TyperGroup):
    pass
