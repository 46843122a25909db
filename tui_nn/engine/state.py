"""RunState: where a run is, in one dataclass created with the Trainer (no attribute appears
later), filled by setup, advanced by the loop, captured in checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tui_nn.engine.plugins import ScalarLog


@dataclass
class RunState:
    step: int = 0  # global steps done
    epoch: int = 0  # the epoch being trained (0-based)
    step_in_epoch: int = 0  # the step being taken in it (where a failure resumes from)
    start_epoch: int = 0
    start_step_in_epoch: int = 0
    epoch_gen_state: Any = None  # the shuffle generator at the start of this epoch
    best_value: float | None = None
    last_value: float | None = None
    last_save: float = 0.0  # monotonic time of the last last.pt write
    last_saved_step: int | None = None
    session_start_step: int = 0
    t0: float = 0.0  # monotonic start of this session
    epoch_t0: float = 0.0
    stopped: bool = False
    val_batch_size: int = 0  # validation's batch once out of memory halved it (0: the default)
    resumed_threads: int = 0  # the checkpoint's CPU thread count (bitwise resumes keep it)
    threads_before: int | None = None  # the process's thread count, restored at the end
    # The current report window: losses stay on the device until a report reads them.
    losses: list = field(default_factory=list)
    window_t0: float = 0.0
    window_samples: int = 0
    next_report: float = 0.0
    epoch_loss_sum: Any = None
    epoch_terms: int = 0
    global_n: int = 0  # the step's batch, all ranks' samples (DefaultStep's DDP loss)
    # The epoch's running sums when a checkpoint taken mid-epoch was restored: its train_loss,
    # time and samples/s go on from them, as if never interrupted (checkpoint.epoch_so_far).
    carried: dict[str, Any] | None = None
    scalars: ScalarLog = field(default_factory=ScalarLog)  # a step plugin's extra scalars
    predictions: Any = None  # the last validation pass's predictions (insight only)

    def leave_out(self, seconds: float) -> None:
        """A pause is not training: the epoch's time and the throughput window skip it (the
        run's elapsed time, wall clock, keeps it)."""
        self.epoch_t0 += seconds
        self.window_t0 += seconds
