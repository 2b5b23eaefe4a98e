"""What a lab device times: the artifact that ships, in its format and precision, on its runtime.

A `TimedArtifact` is a file to send and the format it is timed in. ONNX and TFLite files are
timed as sent (onnxruntime; LiteRT with XNNPACK, or benchmark_model on Android). A TensorRT
engine is tied to its GPU and TensorRT version, so it is built on the device from the ONNX file
sent (`targets/linux/trt_build.py`, cached there) and then timed: its `path` is that ONNX.

`choose` picks, from a run's artifacts, what one device times: the deployed format when its
platform times that format, else the nearest artifact it can time, with a note saying so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SUFFIX_FORMAT = {".onnx": "onnx", ".tflite": "tflite", ".engine": "tensorrt"}
BUILT_ON_DEVICE = {"tensorrt": "onnx"}  # format -> the format it is built from, on the device


@dataclass(frozen=True)
class TimedArtifact:
    path: Path
    format: str
    precision: str | None = None  # None: not known (a file given to `bench`)

    @classmethod
    def of(cls, artifact: Path | TimedArtifact) -> TimedArtifact:
        """A file timed in the format its name says (a TimedArtifact is returned as is)."""
        if isinstance(artifact, TimedArtifact):
            return artifact
        return cls(Path(artifact), SUFFIX_FORMAT.get(Path(artifact).suffix, "onnx"))

    @property
    def built_on_device(self) -> bool:
        return BUILT_ON_DEVICE.get(self.format) == SUFFIX_FORMAT.get(self.path.suffix)

    def describe(self) -> str:
        what = f"{self.format} {self.precision or ''}".strip()
        return (
            f"{what} (built on the device from {self.path.name})" if self.built_on_device else what
        )


@dataclass(frozen=True)
class Choice:
    timed: TimedArtifact
    deployed: bool  # False: a stand-in for the deployed artifact was timed (see note)
    note: str | None = None


def choose(
    deploy_format: str,
    precision: str,
    artifacts: Iterable[tuple[str, str, Path]],
    timeable: Iterable[str],
    device: str,
) -> Choice:
    """What `device` times of a run whose chain deploys `deploy_format` at `precision`.

    `artifacts`: (format, precision, path) of what the run wrote, in chain order; `timeable`:
    the formats the device's platform times."""
    written = list(artifacts)
    can_time = set(timeable)
    by_format = {fmt: (prec, path) for fmt, prec, path in written}
    if deploy_format in can_time:
        if deploy_format in by_format:
            prec, path = by_format[deploy_format]
            return Choice(TimedArtifact(path, deploy_format, prec), True)
        source = BUILT_ON_DEVICE.get(deploy_format)
        if source in by_format:
            return Choice(TimedArtifact(by_format[source][1], deploy_format, precision), True)
    for fmt, prec, path in reversed(written):  # the nearest artifact the device can time
        if fmt in can_time:
            note = (
                f"latency on {device} is of the {fmt} {prec} artifact, not of the {deploy_format} "
                f"{precision} one that ships ({device} cannot time {deploy_format} here)"
            )
            return Choice(TimedArtifact(path, fmt, prec), False, note)
    raise ValueError(
        f"{device} times {', '.join(sorted(can_time))}; this run wrote "
        f"{', '.join(fmt for fmt, _, _ in written) or 'nothing'}"
    )
