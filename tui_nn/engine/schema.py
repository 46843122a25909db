"""The fields of each record the views read, with their JSON types: a record from a file is
checked against this before a widget or console line reads its attributes, so a record with a
string where a number belongs (or a field missing) is skipped instead of crashing a render.

This is where records from files are decoded, so it is where their strings are made inert
(textsafe: every control, bidi and separator character shown as a visible escape, the length
capped) and their numbers checked: every reader (`runs`, history, watch, the TensorBoard
export) gets safe values from here and need not clean them again. Non-finite numbers are
written as the strings "NaN", "Infinity", "-Infinity" (strict JSON); older files hold bare
NaN/Infinity tokens, which Python's json reads as floats: both decode to the same float.

The fields and their types come from tui_nn.engine.events (stdlib only): decode() turns a
record back into the event it was written from.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Callable

from tui_nn.engine import events as ev
from tui_nn.textsafe import clean, clean_line

INT, NUM, STR, BOOL, LIST, DICT = "int", "num", "str", "bool", "list", "dict"
# STR fields are one line (names, paths, a status); these may hold several (an error message).
_MULTILINE = frozenset({"message", "setup"})
# How metrics.jsonl spells the floats JSON has no number for (RunDir writes these).
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

# An annotation of an event field -> its JSON type.
_TYPES = {"int": INT, "float": NUM, "str": STR, "bool": BOOL, "tuple[float, ...]": LIST,
          "dict[str, float]": DICT, "dict[str, Any]": DICT}


def _field_spec(f: dataclasses.Field) -> tuple[str, bool]:
    """(JSON type, required) of one event field, from its annotation and default."""
    kind = f.type.replace(" | None", "")
    has_default = (f.default is not dataclasses.MISSING
                   or f.default_factory is not dataclasses.MISSING)
    return _TYPES[kind], not has_default and kind == f.type


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


# type -> field -> (type, required), derived from the engine's events (stdlib only, torch-free):
# a field added there is decoded here with no second list to keep equal. An optional field
# may be absent or null; absent, it takes the event's default.
SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    name: {f.name: _field_spec(f) for f in dataclasses.fields(cls)}
    for name, cls in ev.PERSISTED.items()}
_DEFAULTS: dict[str, dict[str, Any]] = {
    name: {f.name: _default(f) for f in dataclasses.fields(cls)}
    for name, cls in ev.PERSISTED.items()}

# Far beyond any real run; keeps arithmetic and formatting of counters cheap and finite.
MAX_INT = 1 << 53


def number(value: Any) -> float | None:
    """A float from a record's number (or its strict-JSON spelling of NaN/Infinity), or None
    for anything else: a bool, a string, an int too large for a float to hold exactly."""
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INT:
        return float(value)
    if isinstance(value, str):
        return NON_FINITE.get(value)
    return None


def _decoded(value: Any, kind: str, name: str) -> tuple[bool, Any]:
    """(ok, the value made safe): strings inert, numbers floats, containers cleaned inside."""
    if kind == INT:
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INT
        return ok, value
    if kind == NUM:
        num = number(value)
        return num is not None, num
    if kind == LIST:
        if not isinstance(value, list):
            return False, value
        if all(type(v) is float for v in value):  # the common case: a chunk of losses
            return True, value
        nums = [number(v) for v in value]
        return all(n is not None for n in nums), nums
    if kind == STR:
        if not isinstance(value, str):
            return False, value
        return True, clean(value) if name in _MULTILINE else clean_line(value)
    if kind == DICT:
        return isinstance(value, dict), inert(value) if isinstance(value, dict) else value
    return isinstance(value, bool), value


def inert(value: Any, text: Callable[[str], str] = clean) -> Any:
    """A decoded JSON value with every string in it (keys too) made inert: by `text` (clean,
    or clean_line where every value is one line, as config.json's settings are). Strict-JSON
    spellings of non-finite numbers stay strings: only the schema knows a field is a number.
    Depth is bounded by jsonl.parse_record before anything gets here."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {clean_line(k): inert(v, text) for k, v in value.items()}
    if isinstance(value, list):
        return [inert(v, text) for v in value]
    return value


def why_bad(record: dict[str, Any]) -> str:
    """Why checked(record) refused it, in words (for a message that names the field)."""
    kind_name = record.get("type")
    for name, (kind, required) in SCHEMA.get(kind_name, {}).items():
        value = record.get(name)
        if value is None and required:
            return f"a {kind_name} record without its {name}"
        if value is not None and not _decoded(value, kind, name)[0]:
            # JSON's own escapes (ASCII only) make the value inert.
            return (f"a {kind_name} record whose {name} is {json.dumps(value)[:40]}, not "
                    f"{_WORDS[kind]}")
    return f"a {json.dumps(kind_name)[:40]} record that cannot be read"


_WORDS = {INT: "a whole number", NUM: "a number", LIST: "a list of numbers", STR: "text",
          DICT: "an object", BOOL: "true or false"}


def checked(record: dict[str, Any], require: bool = True) -> dict[str, Any] | None:
    """The record with its fields of the right types (absent optional ones set to their
    default), or None when a field is of another type or (require) a required one is missing.
    require=False checks only the fields present: readers that use .get() with a default
    accept records written by other training loops with fewer fields. Types this module does
    not know (newer engines, insight events) pass with their strings made inert: views
    ignore what they do not know."""
    kind_name = record.get("type")
    spec = SCHEMA.get(kind_name) if isinstance(kind_name, str) else None
    if spec is None:
        return inert(record)
    out = {k: v if k in spec else inert(v) for k, v in record.items()}
    for name, (kind, required) in spec.items():
        value = record.get(name)
        if value is None:
            if not require:
                continue  # the reader's .get() default applies
            if required:
                return None
            default = _DEFAULTS[kind_name][name]
            out[name] = dict(default) if isinstance(default, dict) else default
        else:
            ok, out[name] = _decoded(value, kind, name)
            if not ok:
                return None
    if "scalars" in out and isinstance(out["scalars"], dict):
        out["scalars"] = _numbers(out["scalars"])
    return out


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    """A scalars mapping (name -> number): entries that are not numbers are dropped."""
    return {name: num for name, value in values.items() if (num := number(value)) is not None}


def inert_event(event: ev.Event) -> ev.Event:
    """A live event (the engine's own, in this process) with its strings made inert as decode
    makes a file's: names, paths, messages and a model's decoded output come from the user's
    files, a dataset or the host. Events of other types pass as they are."""
    spec = SCHEMA.get(type(event).__name__)
    changes = {}
    for name, (kind, _) in (spec or {}).items():
        value = getattr(event, name)
        if kind in (STR, DICT) and value:
            changes[name] = _decoded(value, kind, name)[1]
    return dataclasses.replace(event, **changes) if changes else event


def decode(record: Any) -> ev.Event | None:
    """The event a metrics.jsonl record was written from, or None for a record of an unknown
    type or with a field of the wrong type (records come from files: nothing here raises).
    Fields this version does not know are dropped; absent optional ones take defaults."""
    if not isinstance(record, dict):
        return None
    cls = ev.PERSISTED.get(record.get("type")) if isinstance(record.get("type"), str) else None
    data = checked(record) if cls is not None else None
    if data is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    data = {k: v for k, v in data.items() if k in names}
    if "losses" in data:
        data["losses"] = tuple(data["losses"])
    try:
        return cls(**data)
    except TypeError:  # a required field missing
        return None
