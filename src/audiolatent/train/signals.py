"""Graceful stop for training loops: SIGTERM or Ctrl-C finishes the step, checkpoints, exits.

``with StopSignals(logger, lambda: trainer.step) as stop:`` installs the handlers (only on the
main thread, where Python allows it) and restores the previous ones on exit. A signal sets
``stop.requested``; the loop checks it after each step (the trainers all-reduce it so every DDP
rank stops at the same step). A second Ctrl-C while stopping raises KeyboardInterrupt at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

__all__ = ["StopSignals"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    def __init__(self, logger, current_step: Callable[[], int]) -> None:
        self.requested = False
        self._logger = logger
        self._current_step = current_step
        self._previous: dict = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in _SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self._logger.info(f"{signal.Signals(signum).name}: finishing step {self._current_step() + 1}, then checkpointing")
