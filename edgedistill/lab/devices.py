"""Lab-file device entries: the fields every device has, and the fields of each platform's tools.

A device entry is one pydantic model per transport (`transports/ssh.py`, `adb.py`, `local.py`),
picked by the entry's `transport:` value. Each transport model derives from the model of the
platform it reaches (`LinuxDevice`, `AndroidDevice`), which derives from `DeviceEntry`: so an
ssh device takes `host` and `python` but refuses `serial` or `delegate` (`extra="forbid"`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DeviceEntry(BaseModel):
    """Fields every device has, whatever reaches it and whatever runs on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    platform: ClassVar[str]  # the key of its edgedistill.lab.platforms.PLATFORMS entry

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)
    profile: str = Field(min_length=1, description="shipped profile name or a .yaml path")
    transport: str
    workdir: str = Field("/tmp", description="absolute directory on the device for run folders")
    env: dict[str, str] = Field(default_factory=dict, description="environment for device commands")
    cooldown_s: float = Field(0.0, ge=0, le=3600, description="pause before each later job")
    connect_timeout_s: float = Field(15.0, gt=0, le=600)
    step_timeout_s: float = Field(600.0, gt=0, le=24 * 3600, description="wall clock per step")
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
            return str(cls.resolve_path(Path(value), info))
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not ENV_NAME.match(key):
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


class LinuxDevice(DeviceEntry):
    """A Linux device: the device-side runner's Python, and the vendor tools `lab check` finds."""

    platform: ClassVar[str] = "linux"

    python: str | None = Field(None, description="python on the device (runs the linux runner)")
    trtexec: str | None = Field(None, description="TensorRT trtexec on the device")
    benchmark_model: str | None = Field(None, description="TFLite benchmark_model on the device")


class AndroidDevice(DeviceEntry):
    """An Android device: TFLite's benchmark_model times the model, with an optional delegate."""

    platform: ClassVar[str] = "android"

    workdir: str = "/data/local/tmp"
    benchmark_model: str | None = Field(None, description="TFLite benchmark_model on the device")
    delegate: Literal["none", "xnnpack", "gpu", "nnapi"] | None = Field(
        None, description="benchmark_model delegate (default: the tool's own choice)"
    )
