"""Stop training cleanly on SIGINT / SIGTERM: the signal sets a flag, the trainer writes a
checkpoint at the next step boundary and raises TrainingStopped (so does the pipeline between
the stages after training); a second SIGINT stops at once."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from edgedistill.errors import EdgeDistillError

log = logging.getLogger(__name__)


class TrainingStopped(EdgeDistillError):
    """Training stopped on request after writing a checkpoint; `--resume` continues it."""

    exit_code = 130


class StopFlag:
    """Set by a signal (or by code: `request()`); read by the trainer between steps."""

    def __init__(self) -> None:
        self.requested = False
        self.reason = ""

    def request(self, reason: str = "requested") -> None:
        self.requested = True
        self.reason = reason

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.warning("%s received: stopping at the next step and writing a checkpoint", name)
        self.request(name)

    def check(self, next_stage: str) -> None:
        """Between stages that do not train: stop here if a signal asked for it (training
        reads `requested` between steps itself)."""
        if self.requested:
            raise TrainingStopped(
                f"stopped before {next_stage} ({self.reason}); everything before it is kept; "
                "continue with --resume"
            )

    @contextmanager
    def on_signals(self) -> Iterator[StopFlag]:
        """Route SIGINT and SIGTERM to this flag while the block runs (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
