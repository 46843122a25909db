"""The fields of each record the views read, with their JSON types: a record from a file is
checked against this before a widget or console line reads its attributes, so a record with a
string where a number belongs (or a field missing) is skipped instead of crashing a render.

Kept equal to tui_nn.engine.events by a test (the engine imports torch; this must not).
"""

from __future__ import annotations

from typing import Any

INT, NUM, STR, BOOL, LIST, DICT = "int", "num", "str", "bool", "list", "dict"

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


def _is(value: Any, kind: str) -> bool:
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INT
    if kind == NUM:
        return (isinstance(value, float)
                or (isinstance(value, int) and not isinstance(value, bool)
                    and abs(value) <= MAX_INT))
    if kind == LIST:
        return isinstance(value, list) and all(_is(v, NUM) for v in value)
    return isinstance(value, {STR: str, BOOL: bool, DICT: dict}[kind])


def checked(record: dict[str, Any], require: bool = True) -> dict[str, Any] | None:
    """The record with its fields of the right types (absent optional ones set to their
    default), or None when a field is of another type or (require) a required one is missing.
    require=False checks only the fields present: readers that use .get() with a default
    accept records written by other training loops with fewer fields. Types this module does
    not know (newer engines, insight events) pass unchanged: views ignore what they do not
    know."""
    kind_name = record.get("type")
    spec = SCHEMA.get(kind_name) if isinstance(kind_name, str) else None
    if spec is None:
        return record
    out = dict(record)
    for name, (kind, required) in spec.items():
        value = record.get(name)
        if value is None:
            if not require:
                continue  # the reader's .get() default applies
            if required:
                return None
            default = DEFAULTS.get(name)
            out[name] = dict(default) if isinstance(default, dict) else default
        elif not _is(value, kind):
            return None
    return out
