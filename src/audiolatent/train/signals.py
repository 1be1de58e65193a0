"""Graceful stop for training loops: SIGTERM or Ctrl-C finishes the step, checkpoints, exits.

``with StopSignals(logger, lambda: trainer.step) as stop:`` installs the handlers (only on the
main thread, where Python allows it) and restores the previous ones on exit. A signal sets
``stop.requested``; the loop checks it after each step (the trainers all-reduce it so every DDP
rank stops at the same step). A second Ctrl-C while stopping raises KeyboardInterrupt at once.

``time_limit_s`` makes the same graceful stop happen by itself once that many seconds have passed
since ``__enter__`` (the start of training, after the data is prepared): the way to run races of
equal wall-clock time (``audiolatent train --time-limit MINUTES``).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

__all__ = ["StopSignals"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    def __init__(self, logger, current_step: Callable[[], int], time_limit_s: float | None = None) -> None:
        if time_limit_s is not None and not time_limit_s >= 0:
            raise ValueError(f"time limit must be >= 0 seconds, got {time_limit_s}")
        self._signalled = False
        self._logger = logger
        self._current_step = current_step
        self._previous: dict = {}
        self.time_limit_s = time_limit_s
        self._deadline: float | None = None

    @property
    def requested(self) -> bool:
        """A signal arrived, the time limit passed, or a caller set it (the DDP all-reduce)."""
        if not self._signalled and self._deadline is not None and time.monotonic() >= self._deadline:
            self._signalled = True
            self._logger.info(f"time limit of {self.time_limit_s / 60:g} min reached: checkpointing at the end of the "
                              "step in progress")
        return self._signalled

    @requested.setter
    def requested(self, value: bool) -> None:
        self._signalled = bool(value)

    def __enter__(self) -> "StopSignals":
        if self.time_limit_s is not None:
            self._deadline = time.monotonic() + self.time_limit_s
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in _SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self._signalled and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self._signalled = True
        self._logger.info(f"{signal.Signals(signum).name}: finishing step {self._current_step() + 1}, then checkpointing")
