"""Shared CLI plumbing: the options every command spells the same way, error -> exit code
mapping, stderr console, JSON output, progress bars."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from edgedistill.errors import EdgeDistillError, OutputWriteError

F = TypeVar("F", bound=Callable[..., Any])

stderr = Console(stderr=True)

# Options several commands share, declared once so their help reads the same everywhere.
# A command that needs another default gets another alias, never its own help text.
_DEVICE_HELP = "Device profile name, or a path to your own .yaml."
_TASK_HELP = "Built-in task name (digits) or a task recipe YAML."

DeviceOpt = Annotated[str, typer.Option(help=_DEVICE_HELP)]
HostDeviceOpt = Annotated[str | None, typer.Option(help=f"{_DEVICE_HELP} (default: host-cpu)")]
ExportDeviceOpt = Annotated[
    str | None,
    typer.Option(help=f"{_DEVICE_HELP} Its deploy chain, precision and Core ML target are used."),
]
TaskOpt = Annotated[str, typer.Option(help=_TASK_HELP)]
DataTaskOpt = Annotated[
    str | None, typer.Option(help=f"{_TASK_HELP} (default: digits, or the defaults for --data)")
]
TeacherPreprocessOpt = Annotated[
    str | None,
    typer.Option(
        help="What your teacher was trained on: unit ([0, 1]), imagenet, signed ([-1, 1]), raw "
        "(0..255) or data (the data's mean/std), optionally followed by fields that override "
        "it, e.g. unit,channel_order=bgr,resize=224x224 or scale=1/255,mean=0.5/0.5/0.5,"
        "std=0.5/0.5/0.5,layout=nhwc. Default: detected on the val split. The student and the "
        "bundle use the same."
    ),
]
ExportTaskOpt = Annotated[
    str | None,
    typer.Option(
        help=f"{_TASK_HELP} Its val/test splits validate the artifacts, its preprocessing and "
        "labels go with them. (default: the checkpoint's task)"
    ),
]
ThreadsOpt = Annotated[int, typer.Option(help="onnxruntime threads for host latency measurements.")]
PrecisionOpt = Annotated[
    str | None,
    typer.Option(help="fp32 | fp16 | int8 (default: the profile's deploy precision)."),
]
LabOpt = Annotated[
    Path | None,
    typer.Option(help="Lab file (devices.yaml): measure on its devices, not this host."),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        help="Lab device name(s), comma-separated (default: every device in the lab file)."
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging on stderr.")]


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=stderr, show_path=False, show_time=False)],
        force=True,
    )


def handle_errors(fn: F) -> F:
    """Turn EdgeDistillError into a one-line message on stderr and its exit code; so too a
    write that failed for want of room (disk full, quota, read-only) outside atomic.py."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgeDistillError as exc:
            _print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            failed = OutputWriteError.from_os_error(exc)
            if failed is None:
                raise
            _print_error(failed)
            raise typer.Exit(failed.exit_code) from None
        except KeyboardInterrupt:
            stderr.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _print_error(exc: EdgeDistillError) -> None:
    stderr.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout and nothing else."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


class ProgressReporter:
    """Callback object library code calls with (stage, done, total); draws rich bars on stderr."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int | None, note: str = "") -> None:
        label = f"{stage} {note}".strip()
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(label, total=total)
        self._progress.update(self._tasks[stage], completed=done, total=total, description=label)


@contextmanager
def progress_bars() -> Iterator[ProgressReporter]:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
    )
    with progress:
        yield ProgressReporter(progress)
