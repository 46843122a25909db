"""The newest live insight data of a run, kept where the training thread writes and the UI reads.

Plain Python (no textual, no torch). The bridge stores each insight event here from the
training thread (a reference assignment and a counter bump: cheap, and the engine only sends
them at report time); the Insight tab reads them on its frame timer and redraws a view only
when its version moved. Gradient warnings are the exception: they also go out as a message
(msg.GradientWarnings) so none is lost to throttling.
"""

from __future__ import annotations

import threading
from typing import Any


class LiveInsightState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.gradients: Any = None  # ev.GradientFlow
            self.fit: Any = None  # ev.FitUpdate
            self.predictions: Any = None  # ev.ValPredictions, or ev.GeneratedSamples (GAN)
            self.gradient_version = 0
            self.fit_version = 0
            self.predictions_version = 0
            self.warnings: list[str] = []  # every gradient warning of the run, in order

    def add(self, event: Any) -> bool:
        """Store an insight event; False when it is not one."""
        from tui_nn.engine import events as ev  # imported by the Trainer already

        with self._lock:
            if isinstance(event, ev.GradientFlow):
                self.gradients = event
                self.gradient_version += 1
                self.warnings.extend(event.snapshot.warnings)
            elif isinstance(event, ev.FitUpdate):
                self.fit = event
                self.fit_version += 1
            elif isinstance(event, (ev.ValPredictions, ev.GeneratedSamples)):
                self.predictions = event
                self.predictions_version += 1
            else:
                return False
        return True
