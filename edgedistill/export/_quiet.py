"""Keep converter chatter (C++ logs, progress prints, warnings) off stdout and stderr.

Converters print from C++ and from Python straight to file descriptors 1 and 2; `--json` owes
the user one JSON document on stdout and nothing else. What they print is logged at debug level.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator

log = logging.getLogger(__name__)
_TAIL_CHARS = 4000


@contextlib.contextmanager
def converter_output(tool: str, env: dict[str, str] | None = None) -> Iterator[None]:
    """Send fds 1 and 2 (and sys.stdout / sys.stderr) to a scratch file while `tool` runs."""
    saved_env = {key: os.environ.get(key) for key in env or {}}
    os.environ.update(env or {})
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    python_text = io.StringIO()
    with tempfile.TemporaryFile() as sink:
        saved_fds = _redirect_fds(sink.fileno())
        try:
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stdout(python_text),
                contextlib.redirect_stderr(python_text),
            ):
                warnings.simplefilter("ignore")
                yield
        finally:
            _restore_fds(saved_fds)
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace") + python_text.getvalue()
            if text.strip():
                log.debug("%s printed:\n%s", tool, text[-_TAIL_CHARS:])


def _redirect_fds(target: int) -> list[tuple[int, int]]:
    saved = []
    for fd in (1, 2):
        try:
            saved.append((fd, os.dup(fd)))
            os.dup2(target, fd)
        except OSError:  # no such descriptor (a detached process): nothing to keep clean
            continue
    return saved


def _restore_fds(saved: list[tuple[int, int]]) -> None:
    for fd, copy in saved:
        os.dup2(copy, fd)
        os.close(copy)
