"""Where models come from: a zoo name, a Python file, or an importable factory.

    cnn                                  the zoo (tui_nn.zoo.registry)
    path/to/model.py:Net                 a class (or function) in a file
    path/to/model.py                     the file's only nn.Module subclass
    torchvision.models:resnet18          any importable class or factory
    pkg.module:build(num_classes=10)     constructor arguments as Python literals

Models are built under `building_on(device)` (meta by default, initialisers skipped), so
building a 70B model costs no memory. Every user mistake raises `SourceError` with a one-line
message.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import hashlib
import importlib
import inspect
import sys
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tui_nn.textsafe import first_line
from tui_nn.zoo.building import building_on
from tui_nn.zoo.registry import MODELS, ModelSpec, UnknownModelError, get_model_spec


class SourceError(Exception):
    """A model source the user gave cannot be loaded; str() is a one-line message."""


@dataclass
class LoadedModel:
    model: nn.Module
    name: str  # 'cnn', 'model.py:Net', 'torchvision.models:resnet18'
    spec: ModelSpec | None  # zoo models only
    default_input_shapes: list[tuple[int, ...]] | None  # per sample, no batch; None = unknown
    dtype: torch.dtype | None  # input dtype the model wants, None = not known (float)
    notes: list[str] = field(default_factory=list)  # e.g. 'built on CPU: ... fails on meta'


# torchvision classification models take 3×224×224 unless they say otherwise.
_TORCHVISION_INPUTS = {"inception_v3": (3, 299, 299)}


def load_model(source: str, *, args: tuple = (), kwargs: dict | None = None,
               device: str | torch.device = "meta") -> LoadedModel:
    source = source.strip()
    if not source:
        raise SourceError("empty model source: give a zoo name (e.g. cnn), path/to/model.py:Class "
                          "or package.module:factory")
    target, call_args, call_kwargs = _split_call(source)
    args = (*call_args, *args)
    kwargs = {**call_kwargs, **(kwargs or {})}

    if ":" not in target or _is_drive_path(target):
        if target in MODELS:
            if args or kwargs:
                raise SourceError(f"zoo model '{target}' takes no constructor arguments")
            return _load_zoo(target, device)
        if target.endswith(".py") or "/" in target or "\\" in target:
            module = _exec_file(Path(target))
            name = _only_module_class(module, target)
            return _build(module, name, f"{target}:{name}", args, kwargs, device)
        if "." in target and not target.startswith("."):
            # 'torchvision.models.resnet18' written with a dot instead of the colon
            where, _, attr = target.rpartition(".")
            try:
                module = importlib.import_module(where)
            except Exception:  # noqa: BLE001 - fall through to the zoo message
                module = None
            if module is not None:
                return _build(module, attr, f"{where}:{attr}", args, kwargs, device)
        try:
            get_model_spec(target)
        except UnknownModelError as exc:
            raise SourceError(f"{exc}; or give path/to/model.py:Class or package.module:factory") \
                from None
    where, _, attr = target.rpartition(":")
    if not where or not attr:
        raise SourceError(f"bad model source '{source}': write path/to/model.py:Class or "
                          f"package.module:factory")
    if where.endswith(".py") or "/" in where or "\\" in where or Path(where).is_file():
        module = _exec_file(Path(where))
    else:
        module = _import(where)
    return _build(module, attr, target, args, kwargs, device)


def load_file_attribute(path: str, attr: str) -> Any:
    """attr (dotted) of a user's .py file, run as a model file is (a dataset's build())."""
    return _resolve(_exec_file(Path(path)), attr, path)


def _is_drive_path(target: str) -> bool:
    return len(target) > 2 and target[1] == ":" and target[2] in "\\/"  # C:\models\net.py


def _split_call(source: str) -> tuple[str, tuple, dict]:
    """'mod:Net(3, width=64)' -> ('mod:Net', (3,), {'width': 64}); literals only, never eval."""
    if not source.endswith(")") or "(" not in source:
        return source, (), {}
    start = source.index("(")
    target, call = source[:start], source[start:]
    try:
        node = ast.parse(f"f{call}", mode="eval").body
        assert isinstance(node, ast.Call)
        args = tuple(ast.literal_eval(a) for a in node.args)
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
    except (SyntaxError, ValueError, AssertionError):
        raise SourceError(f"cannot read the constructor arguments '{call}': use Python literals, "
                          f"e.g. {target}(num_classes=10)") from None
    return target, args, kwargs


def _load_zoo(name: str, device: str | torch.device) -> LoadedModel:
    spec = get_model_spec(name)
    with building_on(device):
        model = spec.build()
    return LoadedModel(model, name, spec, [tuple(spec.input_shape)], spec.input_dtype)


def _exec_file(path: Path) -> Any:
    path = path.expanduser()
    if not path.exists():
        raise SourceError(f"model file not found: {path}")
    if path.is_dir():
        raise SourceError(f"{path} is a folder: give the .py file, e.g. {path}/model.py:Net")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    module_name = f"tui_nn_user_{resolved.stem}_{digest}"
    try:
        source = resolved.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None
    # Compiled from the text every time, never from __pycache__: the TUI reloads a file the
    # user has just edited (same size, same second would fool the bytecode cache), and the
    # user's folder gets no __pycache__ from us.
    module = types.ModuleType(module_name)
    module.__file__ = str(resolved)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    sys.path.insert(0, str(resolved.parent))  # so the file can import its neighbours
    try:
        exec(compile(source, str(resolved), "exec"), module.__dict__)  # noqa: S102 - user's file
    except SyntaxError as exc:
        del sys.modules[module_name]
        raise SourceError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a file may raise anything
        del sys.modules[module_name]
        line = _line_in(exc, resolved)
        raise SourceError(f"{path}{line}: running the file raised "
                          f"{first_line(exc, with_type=True)}") from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(resolved.parent))
    return module


def _import(dotted: str) -> Any:
    try:
        return importlib.import_module(dotted)
    except SyntaxError as exc:
        raise SourceError(f"{exc.filename}:{exc.lineno}: syntax error: {exc.msg}") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001
        if isinstance(exc, ModuleNotFoundError) and exc.name and dotted.startswith(exc.name):
            raise SourceError(f"cannot import '{dotted}': no module named '{exc.name}' (for a "
                              f"file, give its path ending in .py)") from None
        raise SourceError(f"importing '{dotted}' failed: "
                          f"{first_line(exc, with_type=True)}") from None


def _module_classes(module: Any) -> list[str]:
    return [n for n, obj in vars(module).items()
            if inspect.isclass(obj) and issubclass(obj, nn.Module)
            and obj.__module__ == module.__name__]


def _only_module_class(module: Any, target: str) -> str:
    classes = _module_classes(module)
    if len(classes) == 1:
        return classes[0]
    if not classes:
        raise SourceError(f"{target} defines no nn.Module class: give one as {target}:Name")
    raise SourceError(f"{target} defines several nn.Module classes ({', '.join(classes)}): "
                      f"pick one, e.g. {target}:{classes[-1]}")


def _resolve(module: Any, attr: str, where: str) -> Any:
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            classes = _module_classes(obj) if inspect.ismodule(obj) else []
            listing = f" nn.Module classes there: {', '.join(classes)}." if classes and not close \
                else ""
            raise SourceError(f"'{where}' has no '{part}'.{hint}{listing}")
        obj = getattr(obj, part)
    return obj


def _build(module: Any, attr: str, name: str, args: tuple, kwargs: dict,
           device: str | torch.device) -> LoadedModel:
    where = name.rpartition(":")[0] or name
    obj = _resolve(module, attr, where)
    notes: list[str] = []
    if isinstance(obj, nn.Module):
        if args or kwargs:
            raise SourceError(f"{name} is already a model instance: it takes no arguments")
        model = obj
    elif callable(obj):
        call = f"{attr}({_args_text(args, kwargs)})"
        try:
            with building_on(device):
                model = obj(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the user's constructor may raise anything
            if str(device) != "meta" or not _meta_problem(exc):
                raise SourceError(f"{call} raised {first_line(exc, with_type=True)}") from None
            # Some constructors read tensor values (e.g. `.item()` on an init); build on CPU.
            try:
                model = obj(*args, **kwargs)
            except Exception as exc2:  # noqa: BLE001
                raise SourceError(f"{call} raised {first_line(exc2, with_type=True)}") from None
            notes.append(f"built on CPU: {call} fails on the meta device "
                         f"({first_line(exc, with_type=True)})")
    else:
        raise SourceError(f"{name} is not an nn.Module class or factory (it is a value of type "
                          f"{type(obj).__name__})")
    if not isinstance(model, nn.Module):
        raise SourceError(f"{name} returned {type(model).__name__}, not an nn.Module")
    return LoadedModel(model, name, None, _default_inputs(module, attr, model), None, notes)


def _default_inputs(module: Any, attr: str, model: nn.Module) -> list[tuple[int, ...]] | None:
    declared = getattr(model, "input_shape", None)  # a model may declare its own sample shape
    if isinstance(declared, tuple) and declared and all(isinstance(d, int) for d in declared):
        return [declared]
    if getattr(module, "__name__", "").startswith("torchvision.models") \
            and "detection" not in module.__name__ and "segmentation" not in module.__name__ \
            and "video" not in module.__name__:
        return [_TORCHVISION_INPUTS.get(attr, (3, 224, 224))]
    return None


def _meta_problem(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, NotImplementedError) or "meta" in text


def _args_text(args: tuple, kwargs: dict) -> str:
    return ", ".join([*(repr(a) for a in args), *(f"{k}={v!r}" for k, v in kwargs.items())])


def _line_in(exc: BaseException, path: Path) -> str:
    """':12' — the last traceback line inside the user's file, '' if none."""
    line = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        try:
            if Path(frame.filename).resolve() == path:
                line = f":{frame.lineno}"
        except OSError:
            continue
    return line
