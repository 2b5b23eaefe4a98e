"""Standard output and error that may go away: a long `fit` whose terminal is lost (a dropped
ssh session, a `| tee log` that died) keeps running and writes its run; what it would have
printed is dropped.

Python ignores SIGPIPE, so a write to a pipe with no reader raises BrokenPipeError, which
would end the command wherever it happened to log. `outlive_readers` wraps both streams: the
first failed write points the file descriptor at /dev/null (so the child processes started
later, which inherit it, do not fail either) and every later write is dropped.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Any, TextIO

GONE = (errno.EPIPE, errno.EIO, errno.ECONNRESET)  # no reader, a hung-up terminal, a socket


class OutlivedStream:
    """A text stream whose writes never fail for want of a reader."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._stream.write(text)
            except OSError as exc:
                self._lost(exc)
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except OSError as exc:
                self._lost(exc)

    def _lost(self, exc: OSError) -> None:
        if exc.errno not in GONE:
            raise exc
        self.gone = True
        try:
            descriptor = self._stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, descriptor)
            os.close(null)
        except (OSError, ValueError):
            pass  # no descriptor to redirect: the dropped writes are all that matters

    def isatty(self) -> bool:
        return not self.gone and self._stream.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def outlive_readers() -> None:
    """Wrap sys.stdout and sys.stderr (once) so that losing their reader ends no command."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, OutlivedStream):
            setattr(sys, name, OutlivedStream(stream))
