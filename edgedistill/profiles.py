"""Device profiles: the pydantic schema, loading shipped or user files, and validation."""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgedistill.documents import load_yaml
from edgedistill.errors import UserInputError, describe_validation

SCHEMA_VERSION = 1
Precision = Literal["fp32", "fp16", "int8"]
MANUAL = "manual"  # lab.transport of a device nothing here reaches (timed by hand)
# Formats, runtimes and transports are names of the exporter and transport registries; they are
# checked against them where those are known (edgedistill.fit.profile_check), not listed here.


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Compute(_Strict):
    """Datasheet figures of the part that runs the model (and of the CPU beside it)."""

    processor: str = Field(description="what executes the model, e.g. 'Ampere GPU, 1024 cores'")
    peak_ops_per_s: dict[Precision, float] = Field(
        description="dense peak operations per second (1 MAC = 2 ops) for each precision"
    )
    memory_bandwidth_gb_s: float = Field(gt=0)
    cpu_cores: int = Field(ge=1)
    ram_gb: float = Field(gt=0)
    source: str = Field(min_length=3, description="where the figures come from (datasheet)")

    @model_validator(mode="after")
    def _positive_peaks(self) -> Compute:
        for precision, value in self.peak_ops_per_s.items():
            if value <= 0:
                raise ValueError(f"peak_ops_per_s.{precision} must be positive")
        return self


class Deploy(_Strict):
    """What the device team receives: the format chain and the deployment precision."""

    formats: list[str] = Field(min_length=1)
    precision: Precision

    @model_validator(mode="after")
    def _onnx_first(self) -> Deploy:
        if self.formats[0] != "onnx":
            raise ValueError("formats must start with onnx (the hub format every chain builds on)")
        return self


class FittedLatency(_Strict):
    """A latency model fitted to measurements (`edgedistill calibrate --export-profile FILE`)."""

    precision: Precision
    features: list[str] = Field(min_length=1)
    coefficients: list[float] = Field(min_length=1)
    channel_block: int = Field(1, ge=1, description="channels the device's kernels process at once")
    fit_error: float = Field(ge=0, description="leave-one-out mean absolute relative error")
    provenance: dict[str, str] = Field(description="when, where, runtime and version, threads")

    @model_validator(mode="after")
    def _one_coefficient_per_feature(self) -> FittedLatency:
        if len(self.features) != len(self.coefficients):
            raise ValueError("features and coefficients must have the same length")
        return self


class Latency(_Strict):
    """Coefficients of the datasheet latency model; `calibrated` once fitted to measurements."""

    calibrated: bool = False
    compute_efficiency: float = Field(0.3, gt=0, le=1, description="fraction of peak reached")
    memory_efficiency: float = Field(0.5, gt=0, le=1, description="fraction of bandwidth reached")
    per_layer_overhead_us: float = Field(5.0, ge=0)
    per_inference_overhead_us: float = Field(50.0, ge=0)
    fitted: list[FittedLatency] = Field(default_factory=list)

    @model_validator(mode="after")
    def _calibrated_means_fitted(self) -> Latency:
        if self.calibrated != bool(self.fitted):
            raise ValueError("calibrated must be true exactly when a fitted model is given")
        return self


class InputConstraints(_Strict):
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    batch: int = Field(1, ge=1)
    static_shapes: bool = True
    max_resolution: int | None = Field(None, ge=8)


class Constraints(_Strict):
    input: InputConstraints = InputConstraints()
    full_int8_only: bool = Field(False, description="every op must be int8 (Edge TPU)")
    min_deployment_target: str | None = Field(None, description="e.g. iOS17 for Core ML")
    notes: list[str] = Field(default_factory=list)


class LabAccess(_Strict):
    # local: this host is the device; manual: no transport (timed by hand, e.g. in Xcode, and
    # fed to calibrate), so fit judges the budget on the prediction and says so.
    transport: str  # a registered lab transport, or MANUAL
    notes: str = ""


class DeviceProfile(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    description: str
    compute: Compute
    runtimes: list[str] = Field(min_length=1)
    deploy: Deploy
    latency: Latency = Latency()
    constraints: Constraints = Constraints()
    lab: LabAccess

    @model_validator(mode="after")
    def _peak_for_deploy_precision(self) -> DeviceProfile:
        if self.deploy.precision not in self.compute.peak_ops_per_s:
            raise ValueError(
                f"compute.peak_ops_per_s has no {self.deploy.precision} entry, "
                f"the precision deploy.precision names"
            )
        return self

    @property
    def is_host(self) -> bool:
        return self.lab.transport == "local"


def _shipped_dir() -> Path:
    """Profiles inside the wheel (edgedistill/_profiles) or, in a source checkout, ../profiles."""
    packaged = Path(str(resources.files("edgedistill"))) / "_profiles"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "profiles"


def shipped_profile_names() -> list[str]:
    return sorted(p.stem for p in _shipped_dir().glob("*.yaml"))


def _format_validation_error(path: Path, error: ValidationError) -> str:
    fields = describe_validation(error, "  field ", sep="\n")
    return f"{path}: invalid device profile\n{fields}"


def load_profile_file(path: Path) -> DeviceProfile:
    """Load and validate one profile file; errors name the file and the field."""
    data = load_yaml(path, str(path), "device profile")
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: a device profile must be a YAML mapping")
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as exc:
        raise UserInputError(_format_validation_error(path, exc)) from None


def profile_path(name_or_path: str) -> Path:
    """The file a shipped name or a path refers to (existence is load_profile's to check)."""
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        return Path(name_or_path)
    return _shipped_dir() / f"{name_or_path}.yaml"


def load_profile(name_or_path: str, flag: str = "--device") -> DeviceProfile:
    """Resolve a shipped profile name or a path to a user's profile file."""
    looks_like_path = name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path
    if looks_like_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise UserInputError(f"{flag}: profile file {name_or_path} does not exist")
        return load_profile_file(path)
    names = shipped_profile_names()
    if name_or_path not in names:
        close = difflib.get_close_matches(name_or_path, names, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserInputError(
            f"{flag}: unknown device {name_or_path!r}{hint} "
            f"(shipped profiles: {', '.join(names)}; or give a path to your own .yaml)"
        )
    return load_profile_file(_shipped_dir() / f"{name_or_path}.yaml")
