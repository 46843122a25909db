"""Which settings differ between runs: what the runs screen shows beside overlaid curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from tui_nn.runs.info import RunInfo
from tui_nn.runs.records import read_config

# Always different, and saying nothing about how the runs were trained.
DEFAULT_IGNORED = frozenset({"run_dir", "started_at"})

RunLike = RunInfo | Mapping[str, Any] | str | Path


def config_diff(runs: Iterable[RunLike], *,
                ignore: Iterable[str] = DEFAULT_IGNORED) -> dict[str, list[Any]]:
    """{key: [value in run 0, value in run 1, ...]} for every config key whose values are not
    all equal, keys sorted. A key a run lacks counts as None. Nested objects are compared by
    dotted key ("optimizer.betas"). Runs are RunInfos, config dicts or run directories."""
    configs = [_flatten(_config_of(r)) for r in runs]
    ignored = set(ignore)
    keys = sorted({k for c in configs for k in c} - ignored)
    diff = {}
    for key in keys:
        values = [c.get(key) for c in configs]
        if not all(_same(v, values[0]) for v in values[1:]):
            diff[key] = values
    return diff


def _same(a: Any, b: Any) -> bool:
    # 1 and 1.0 are the same setting; True and 1 are not (a flag against a count).
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _config_of(run: RunLike) -> Mapping[str, Any]:
    if isinstance(run, RunInfo):
        return run.config
    if isinstance(run, Mapping):
        return run
    return read_config(run)[0]


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
