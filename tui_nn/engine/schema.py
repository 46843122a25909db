"""The fields of each record the views read, with their JSON types: a record from a file is
checked against this before a widget or console line reads its attributes, so a record with a
string where a number belongs (or a field missing) is skipped instead of crashing a render.

This is where records from files are decoded, so it is where their strings are made inert
(textsafe: every control, bidi and separator character shown as a visible escape, the length
capped) and their numbers checked: every reader (`runs`, history, watch, the TensorBoard
export) gets safe values from here and need not clean them again. Non-finite numbers are
written as the strings "NaN", "Infinity", "-Infinity" (strict JSON); older files hold bare
NaN/Infinity tokens, which Python's json reads as floats: both decode to the same float.

Kept equal to tui_nn.engine.events by a test (the engine imports torch; this must not).
"""

from __future__ import annotations

import json
import math
from typing import Any

from tui_nn.textsafe import clean, clean_line

INT, NUM, STR, BOOL, LIST, DICT = "int", "num", "str", "bool", "list", "dict"
# STR fields are one line (names, paths, a status); these may hold several (an error message).
_MULTILINE = frozenset({"message", "setup"})
# How metrics.jsonl spells the floats JSON has no number for (RunDir writes these).
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

# field -> (type, required). An optional field may be absent or null.
SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    "RunStarted": {
        "run_dir": (STR, False), "model": (STR, True), "dataset": (STR, True),
        "device": (STR, True), "device_name": (STR, True), "task": (STR, True),
        "metric": (STR, True), "n_train": (INT, True), "n_val": (INT, True),
        "epochs": (INT, True), "batch_size": (INT, True), "steps_per_epoch": (INT, True),
        "total_steps": (INT, True), "parameters": (INT, True), "start_epoch": (INT, False),
        "start_step": (INT, False), "changes": (DICT, False), "setup": (STR, False),
        "memory_measured": (DICT, False)},
    "StepMetrics": {
        "epoch": (INT, True), "step": (INT, True), "first_step": (INT, True),
        "losses": (LIST, True), "lr": (NUM, True), "samples_per_s": (NUM, True),
        "eta_s": (NUM, False), "epoch_step": (INT, True), "steps_per_epoch": (INT, True),
        "total_steps": (INT, True), "memory_bytes": (INT, False), "scalars": (DICT, False)},
    "EpochMetrics": {
        "epoch": (INT, True), "step": (INT, True), "train_loss": (NUM, True),
        "val_loss": (NUM, True), "metric": (STR, True), "value": (NUM, True),
        "best_value": (NUM, True), "is_best": (BOOL, True), "elapsed_s": (NUM, True),
        "epoch_time_s": (NUM, True), "samples_per_s": (NUM, True), "decoded": (STR, False),
        "scalars": (DICT, False)},
    "CheckpointSaved": {
        "path": (STR, True), "step": (INT, True), "epoch": (INT, True), "reason": (STR, True)},
    "StateChanged": {"state": (STR, True)},
    "NonFiniteLoss": {
        "epoch": (INT, True), "step": (INT, True), "value": (NUM, True),
        "message": (STR, True), "rolled_back_to": (INT, False)},
    "LrScaled": {"step": (INT, True), "factor": (NUM, True), "lr": (NUM, True)},
    "Notice": {"message": (STR, True), "source": (STR, False)},
    "Finished": {
        "status": (STR, True), "run_dir": (STR, False), "epochs_done": (INT, True),
        "step": (INT, True), "metric": (STR, True), "best_value": (NUM, False),
        "last_value": (NUM, False), "elapsed_s": (NUM, True)},
    "Failed": {
        "message": (STR, True), "kind": (STR, False), "run_dir": (STR, False),
        "step": (INT, False), "details": (DICT, False)},
}

# What an absent optional field means (the engine's dataclass defaults); others become None.
DEFAULTS = {"start_epoch": 0, "start_step": 0, "rolled_back_to": 0, "kind": "error",
            "changes": {}, "scalars": {}, "source": "engine", "setup": ""}

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
        nums = [number(v) for v in value] if isinstance(value, list) else [None]
        return all(n is not None for n in nums), nums
    if kind == STR:
        if not isinstance(value, str):
            return False, value
        return True, clean(value) if name in _MULTILINE else clean_line(value)
    if kind == DICT:
        return isinstance(value, dict), inert(value) if isinstance(value, dict) else value
    return isinstance(value, bool), value


def inert(value: Any) -> Any:
    """A decoded JSON value with every string in it (keys too) made inert. Strict-JSON
    spellings of non-finite numbers stay strings: only the schema knows a field is a number.
    Depth is bounded by jsonl.parse_record before anything gets here."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean_line(k): inert(v) for k, v in value.items()}
    if isinstance(value, list):
        return [inert(v) for v in value]
    return value


def why_bad(record: dict[str, Any]) -> str:
    """Why checked(record) refused it, in words (for a message that names the field)."""
    kind_name = record.get("type")
    for name, (kind, required) in SCHEMA.get(kind_name, {}).items():
        value = record.get(name)
        if value is None and required:
            return f"a {kind_name} record without its {name}"
        if value is not None and not _decoded(value, kind, name)[0]:
            shown = clean_line(json.dumps(value)[:40])
            return f"a {kind_name} record whose {name} is {shown}, not {_WORDS[kind]}"
    return f"a {clean_line(kind_name, 40)} record that cannot be read"


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
            default = DEFAULTS.get(name)
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
    out = {}
    for name, value in values.items():
        num = number(value)
        if num is not None:
            out[name] = num
    return out
