"""The lab file (`devices.yaml`): which devices exist, how to reach them, what runs on them.

Each entry names a device profile and a transport; the transport's own fields (host and keys for
ssh, the serial for adb) are validated by the model that transport registers, so a new transport
brings its fields with it.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from edgedistill.errors import UserInputError

SCHEMA_VERSION = 1
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class DeviceEntry(BaseModel):
    """Fields every device has; each transport subclasses this with its own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)
    profile: str = Field(min_length=1, description="shipped profile name or a .yaml path")
    transport: str
    workdir: str = Field("/tmp", description="absolute directory on the device for run folders")
    python: str | None = Field(None, description="python on the device (runs the linux runner)")
    benchmark_model: str | None = Field(None, description="TFLite benchmark_model on the device")
    trtexec: str | None = Field(None, description="TensorRT trtexec on the device")
    env: dict[str, str] = Field(default_factory=dict, description="environment for device commands")
    cooldown_s: float = Field(0.0, ge=0, le=3600, description="pause before each later job")
    connect_timeout_s: float = Field(15.0, gt=0, le=600)
    step_timeout_s: float = Field(600.0, gt=0, le=24 * 3600, description="wall clock per step")
    keepalive_s: float = Field(10.0, gt=0, le=600, description="keep-alive interval")
    retries: int = Field(2, ge=0, le=10, description="reconnects for an idempotent step")

    @field_validator("workdir")
    @classmethod
    def _absolute_workdir(cls, value: str) -> str:
        if not value.startswith("/") or "\n" in value or "\0" in value:
            raise ValueError("must be an absolute path on the device, e.g. /tmp")
        return value.rstrip("/") or "/"

    @field_validator("profile")
    @classmethod
    def _profile_path(cls, value: str, info: ValidationInfo) -> str:
        """A profile given as a path is relative to the lab file."""
        if value.endswith((".yaml", ".yml")) or "/" in value:
            resolved = cls.resolve_path(Path(value), info)
            return str(resolved)
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        for key in value:
            if not re.match(ENV_NAME, key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
        return value

    @staticmethod
    def resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
        """Paths in a lab file are relative to the lab file's directory; `~` is expanded."""
        if value is None:
            return None
        value = Path(value).expanduser()
        base = (info.context or {}).get("base_dir")
        if not value.is_absolute() and base is not None:
            value = Path(base) / value
        return value

    @property
    def uri(self) -> str:
        """Where results come from, as written into `measured_on`."""
        raise NotImplementedError


class LabFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    devices: list[dict[str, Any]] = Field(min_length=1)


class Lab:
    """A validated lab file: its devices by name, in file order."""

    def __init__(self, path: Path, devices: list[DeviceEntry]) -> None:
        self.path = path
        self.devices = {device.name: device for device in devices}

    def select(self, targets: list[str], flag: str = "--target") -> list[DeviceEntry]:
        """The named devices, each once, in the order given; unknown names are refused."""
        if not targets:
            raise UserInputError(f"{flag}: name at least one device of {self.path}")
        chosen = []
        for name in dict.fromkeys(targets):
            if name not in self.devices:
                close = difflib.get_close_matches(name, list(self.devices), n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise UserInputError(
                    f"{flag} {name}: no such device in {self.path}{hint} "
                    f"(devices: {', '.join(self.devices)})"
                )
            chosen.append(self.devices[name])
        return chosen


def parse_targets(value: str | None) -> list[str]:
    """`a,b,c` -> ["a", "b", "c"]."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def resolve_targets(lab: Path | None, target: str | None, device: str | None) -> list[DeviceEntry]:
    """The devices `--lab FILE --target A,B` name, each checked against `--device` when given."""
    from edgedistill.profiles import load_profile

    return select_targets(lab, target, load_profile(device).name if device else None)


def select_targets(lab: Path | None, target: str | None, profile: str | None) -> list[DeviceEntry]:
    """The named devices of the lab file; each must use `profile` (a profile name) when given."""
    from edgedistill.profiles import load_profile

    if lab is None:
        raise UserInputError("--target: needs --lab FILE (the lab file that names the device)")
    if not parse_targets(target):
        names = ", ".join(load_lab(lab).devices)
        raise UserInputError(f"--lab {lab}: name the device(s) with --target ({names})")
    devices = load_lab(lab).select(parse_targets(target))
    for entry in devices:
        found = load_profile(entry.profile, flag=f"{lab}: device {entry.name}: field profile")
        if profile is not None and found.name != profile:
            raise UserInputError(
                f"--target {entry.name}: its profile in {lab} is {found.name}, not --device "
                f"{profile}; measure each device with the model made for it"
            )
    return devices


def _field_errors(where: str, error: ValidationError, prefix: str = "") -> list[str]:
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {where}field {prefix}{field}: {item['msg']}")
    return lines


def load_lab(path: Path, flag: str = "--lab") -> Lab:
    """Read and validate a lab file; every error names the file, the device and the field."""
    from edgedistill.lab.transports import TRANSPORTS

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"{flag} {path}: cannot read lab file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserInputError(f"{flag} {path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{flag} {path}: a lab file is a mapping with a `devices:` list")
    try:
        header = LabFile.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: invalid lab file", *_field_errors("", exc)]
        raise UserInputError("\n".join(lines)) from None

    devices: list[DeviceEntry] = []
    problems: list[str] = []
    context = {"base_dir": path.resolve().parent}
    for index, raw in enumerate(header.devices):
        where = f"devices[{index}]"
        if isinstance(raw.get("name"), str):
            where += f" ({raw['name']})"
        transport = raw.get("transport")
        if not isinstance(transport, str) or transport not in TRANSPORTS:
            problems.append(
                f"  {where} field transport: "
                + TRANSPORTS.unknown_message(str(transport) if transport else "(missing)")
            )
            continue
        model = TRANSPORTS.get(transport).Device
        try:
            devices.append(model.model_validate(raw, context=context))
        except ValidationError as exc:
            problems.extend(_field_errors(f"{where} ", exc))
    seen: set[str] = set()
    for device in devices:
        if device.name in seen:
            problems.append(f"  field name: device name {device.name!r} is used twice")
        seen.add(device.name)
    if problems:
        raise UserInputError("\n".join([f"{path}: invalid lab file", *problems]))
    return Lab(path, devices)
