"""Fit the latency model to measurements, and store calibrations with their provenance.

A calibration is stored per (device, runtime, format, precision): the candidates are timed in
the format the device ships and on its runtime (ONNX in onnxruntime on this host; TFLite on
LiteRT or benchmark_model, TensorRT engines built on a Jetson, on lab devices), written at the
precision they are calibrated for, and a model fitted on fp32 artifacts never predicts int8
ones (int8 kernels, and the quantize / dequantize steps around the ops that have none, cost
differently, see latency.model).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

from edgedistill import atomic
from edgedistill.inputs import input_tag
from edgedistill.latency.costs import ModelCost
from edgedistill.latency.model import CHANNEL_BLOCKS, LatencyModel, feature_names, features
from edgedistill.paths import data_dir
from edgedistill.profiles import DeviceProfile

log = logging.getLogger(__name__)
# 2: ten features and a fitted channel block; 3: stored per runtime, format and precision, with
# the int8 features; 4: int8 probes store uint8 weights for onnxruntime (export/onnx_qdq.py)
CALIBRATION_VERSION = 4
PROBE_FORMAT = "onnx"  # what a calibration times by default: the hub format...
PROBE_RUNTIME = "onnxruntime"  # ...in the runtime that runs it (this host times nothing else)


@dataclass
class Measurement:
    spec: str
    features: dict[int, list[float]]  # per channel block the fit may choose
    p50_ms: float
    p90_ms: float


def _solve(rows: list[list[float]], targets: list[float]) -> list[float]:
    """Non-negative least squares on relative error (rows and targets divided by the target)."""
    import numpy as np
    from scipy.optimize import nnls

    a = np.asarray(rows, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    scale = a.max(axis=0)
    scale[scale == 0] = 1.0
    weighted = (a / scale) / y[:, None]
    solution, _ = nnls(weighted, np.ones_like(y))
    return [float(value) for value in solution / scale]


def _fit_block(measurements: list[Measurement], block: int) -> tuple[list[float], float]:
    rows = [m.features[block] for m in measurements]
    targets = [m.p90_ms for m in measurements]
    errors = []
    for held_out in range(len(measurements)):
        keep = [i for i in range(len(measurements)) if i != held_out]
        coefficients = _solve([rows[i] for i in keep], [targets[i] for i in keep])
        predicted = sum(c * f for c, f in zip(coefficients, rows[held_out], strict=True))
        errors.append(abs(predicted - targets[held_out]) / targets[held_out])
    return _solve(rows, targets), float(sum(errors) / len(errors))


def fit(measurements: list[Measurement], precision: str = "fp32") -> tuple[list[float], float, int]:
    """Coefficients, the leave-one-out mean absolute relative error of the fit, and the channel
    block: the one of CHANNEL_BLOCKS whose fit has the lowest leave-one-out error. The
    measurements carry the features of `precision` (see `measurement`)."""
    needed = len(feature_names(precision)) + 1
    if len(measurements) < needed:
        raise ValueError(f"need at least {needed} measurements to calibrate {precision}")
    fits = {block: _fit_block(measurements, block) for block in CHANNEL_BLOCKS}
    block = min(fits, key=lambda b: (fits[b][1], b))
    coefficients, error = fits[block]
    return coefficients, error, block


def host_fingerprint(threads: int, input_shape: tuple[int, ...] | None = None) -> dict[str, str]:
    """What must match for a stored host calibration to apply to this machine (and, when given,
    to students of this input shape: a fit on 32x32 candidates is not stretched to 224x224)."""
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": str(os.cpu_count()),
        "machine": platform.machine(),
        "runtime": f"onnxruntime {onnxruntime.__version__}",
        "format": PROBE_FORMAT,
        "threads": str(threads),
        **({"input": "x".join(map(str, input_shape))} if input_shape is not None else {}),
    }


def calibration_path(
    profile: DeviceProfile,
    precision: str,
    format: str = PROBE_FORMAT,
    runtime: str = PROBE_RUNTIME,
    input_shape: tuple[int, ...] | None = None,
) -> Path:
    """Where the calibration of (device, runtime, format, precision) for students of
    `input_shape` is stored: one file per input (`...fp32.1x32x32.json`, text students
    `...fp32.tokens-40.json`), so that calibrating for one task never replaces another's."""
    tag = "" if input_shape is None else f".{input_tag(input_shape)}"
    return data_dir() / "calibration" / f"{profile.name}.{runtime}.{format}.{precision}{tag}.json"


def save(
    model: LatencyModel,
    measurements: list[Measurement],
    format: str = PROBE_FORMAT,
    runtime: str = PROBE_RUNTIME,
    input_shape: tuple[int, ...] | None = None,
) -> Path:
    path = calibration_path(model.profile, model.precision, format, runtime, input_shape)
    atomic.write_json(
        path,
        {
            "version": CALIBRATION_VERSION,
            "device": model.profile.name,
            "runtime": runtime,
            "format": format,
            "precision": model.precision,
            "features": list(feature_names(model.precision)),
            "coefficients": model.coefficients,
            "channel_block": model.channel_block,
            "fit_error": model.fit_error,
            "provenance": model.provenance,
            "measurements": [asdict(m) for m in measurements],
        },
    )
    return path


def _matches(provenance: dict, fingerprint: dict | None) -> bool:
    return fingerprint is None or all(provenance.get(k) == v for k, v in fingerprint.items())


def from_profile(
    profile: DeviceProfile, precision: str, fingerprint: dict | None, format: str = PROBE_FORMAT
) -> LatencyModel | None:
    """The fitted model a profile file carries (a shared overlay), when it applies here: made
    for `precision`, on `format` artifacts (older overlays name no format: they were ONNX)."""
    for fitted in profile.latency.fitted:
        if fitted.precision != precision or fitted.features != list(feature_names(precision)):
            continue
        if fitted.provenance.get("format", PROBE_FORMAT) != format:
            continue
        if not _matches(fitted.provenance, fingerprint):
            log.info("%s: its fitted latency model was made on another machine", profile.name)
            continue
        provenance = {**fitted.provenance, "source": "profile file"}
        return LatencyModel(
            profile,
            precision,
            fitted.coefficients,
            fitted.fit_error,
            provenance,
            fitted.channel_block,
        )
    return None


def overlay_profile(
    profile: DeviceProfile, model: LatencyModel, format: str = PROBE_FORMAT
) -> dict:
    """The profile as a mapping, with `model` (fitted on `format` artifacts) as its fitted
    latency model for its precision (the fitted models of its other precisions are kept)."""
    if model.coefficients is None or model.fit_error is None:
        raise ValueError("only a calibrated latency model can be exported")
    document = profile.model_dump(mode="json")
    fitted = [f for f in document["latency"]["fitted"] if f["precision"] != model.precision]
    fitted.append(
        {
            "precision": model.precision,
            "features": list(feature_names(model.precision)),
            "coefficients": list(model.coefficients),
            "channel_block": model.channel_block,
            "fit_error": model.fit_error,
            "provenance": {
                **{k: str(v) for k, v in model.provenance.items()},
                "format": format,
            },
        }
    )
    document["latency"]["fitted"] = fitted
    document["latency"]["calibrated"] = True
    return document


def load(
    profile: DeviceProfile,
    precision: str,
    fingerprint: dict | None,
    format: str = PROBE_FORMAT,
    runtime: str = PROBE_RUNTIME,
    input_shape: tuple[int, ...] | None = None,
) -> LatencyModel | None:
    """The stored calibration of (`runtime`, `format`, `precision`) for students of
    `input_shape`, or None when absent, unreadable, made with other features, or made on
    another machine."""
    path = calibration_path(profile, precision, format, runtime, input_shape)
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
        stale = (
            document.get("version") != CALIBRATION_VERSION
            or document.get("features") != list(feature_names(precision))
            or document.get("precision") != precision
            or document.get("format") != format
        )
        provenance = document["provenance"]
        if not _matches(provenance, fingerprint):
            stale = True
        if stale:
            log.info("calibration %s does not match this setup; it will be redone", path)
            return None
        return LatencyModel(
            profile,
            precision,
            document["coefficients"],
            document["fit_error"],
            provenance,
            int(document["channel_block"]),
        )
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable calibration file %s", path)
        return None


def model_from_cost_fit(
    profile: DeviceProfile, precision: str, measurements: list[Measurement], fingerprint: dict
) -> LatencyModel:
    coefficients, error, block = fit(measurements, precision)
    provenance = {
        **fingerprint,
        "format": fingerprint.get("format", PROBE_FORMAT),
        "precision": precision,
        "when_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "target": "p90 latency, batch 1",
        "samples": str(len(measurements)),
    }
    return LatencyModel(profile, precision, coefficients, error, provenance, block)


def measurement(
    spec: str, cost: ModelCost, p50_ms: float, p90_ms: float, precision: str = "fp32"
) -> Measurement:
    """One timed candidate with its features at `precision` for every channel block."""
    by_block = {block: features(cost, block, precision) for block in CHANNEL_BLOCKS}
    return Measurement(spec, by_block, p50_ms, p90_ms)
