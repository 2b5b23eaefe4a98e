"""The lab file (`devices.yaml`): which devices exist, how to reach them, what runs on them.

Each entry names a device profile and a transport; `transport:` picks the model that validates
the entry (the `Device` of the transport registered under that name, `edgedistill.lab.devices`),
so a new transport brings its fields with it and a field of another transport is refused.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgedistill.documents import load_yaml
from edgedistill.errors import UserInputError, error_location
from edgedistill.lab.devices import DeviceEntry
from edgedistill.lab.transports import TRANSPORTS
from edgedistill.profiles import DeviceProfile, load_profile

SCHEMA_VERSION = 1


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
    return select_targets(lab, target, load_profile(device).name if device else None)


def select_targets(lab: Path | None, target: str | None, profile: str | None) -> list[DeviceEntry]:
    """The named devices of the lab file; each must use `profile` (a profile name) when given."""
    if lab is None:
        raise UserInputError("--target: needs --lab FILE (the lab file that names the device)")
    if not parse_targets(target):
        names = ", ".join(load_lab(lab).devices)
        raise UserInputError(f"--lab {lab}: name the device(s) with --target ({names})")
    devices = load_lab(lab).select(parse_targets(target))
    for entry, found in zip(devices, device_profiles(lab, devices), strict=True):
        if profile is not None and found.name != profile:
            raise UserInputError(
                f"--target {entry.name}: its profile in {lab} is {found.name}, not --device "
                f"{profile}; measure each device with the model made for it"
            )
    return devices


def device_profiles(lab: Path, devices: list[DeviceEntry]) -> list[DeviceProfile]:
    """Each device's profile; an unknown or invalid one is the lab file's error (exit 2),
    found before any device is contacted."""
    return [
        load_profile(entry.profile, flag=f"{lab}: device {entry.name}: field profile")
        for entry in devices
    ]


def _field_errors(where: str, error: ValidationError, transport: str | None = None) -> list[str]:
    lines = []
    for item in error.errors():
        field = error_location(item)
        message = item["msg"]
        if item["type"] == "extra_forbidden" and transport is not None:
            message += _whose_field(field, transport)
        lines.append(f"  {where}field {field}: {message}")
    return lines


def _whose_field(field: str, transport: str) -> str:
    """Which transports take a field another transport's device was given, if any."""
    owners = [name for name in TRANSPORTS if field in TRANSPORTS.get(name).Device.model_fields]
    if not owners:
        return ""
    return f" ({field} is a field of {' and '.join(owners)} devices, not of {transport} ones)"


def load_lab(path: Path, flag: str = "--lab") -> Lab:
    """Read and validate a lab file; every error names the file, the device and the field."""
    data = load_yaml(path, f"{flag} {path}", "lab file")
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
            problems.extend(_field_errors(f"{where} ", exc, transport))
    seen: set[str] = set()
    for device in devices:
        if device.name in seen:
            problems.append(f"  field name: device name {device.name!r} is used twice")
        seen.add(device.name)
    if problems:
        raise UserInputError("\n".join([f"{path}: invalid lab file", *problems]))
    return Lab(path, devices)
