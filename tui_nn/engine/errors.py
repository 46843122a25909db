"""The errors a run fails with, apart from the modules that raise them: the Trainer catches
them all, and no helper has to import another helper (or the Trainer) to raise one."""

from __future__ import annotations


class TrainingError(Exception):
    """A failure with a user-facing message; kind is one of the Failed event kinds
    ("error", "nan", "oom", "data", "shape", "fit", "disk", "usage", "checkpoint")."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


class CheckpointError(Exception):
    """A checkpoint cannot be written or loaded; the message is user-facing."""


def data_error_types() -> tuple[type[BaseException], ...]:
    """What a data set or the zoo raises for a bad name or file (kind "data"); imported when
    asked, so that importing this module costs nothing."""
    from tui_nn.data.base import DataError
    from tui_nn.zoo import UnknownModelError
    return (DataError, UnknownModelError)
