"""A device profile's names checked against the registries that define them: deploy formats
against the exporters, runtimes against the runtimes those exporters' artifacts run on, the lab
transport against the transports (or `manual`). The profile schema itself lists none of them,
so a new exporter or transport is known to every profile the moment it registers."""

from __future__ import annotations

from edgedistill.errors import UserInputError
from edgedistill.export import EXPORTERS
from edgedistill.lab.transports import TRANSPORTS
from edgedistill.profiles import DeviceProfile, load_profile, profile_path
from edgedistill.registry import Registry

MANUAL = "manual"  # no transport: timed by hand (e.g. in Xcode) and fed to calibrate


def known_runtimes() -> list[str]:
    return sorted({EXPORTERS.get(name).runs_on for name in EXPORTERS})


def check_profile(profile: DeviceProfile, where: str) -> DeviceProfile:
    """Refuse a name no registry knows, naming `where` (the profile file) and the field."""
    for index, name in enumerate(profile.deploy.formats):
        _known(name, EXPORTERS, where, f"deploy.formats.{index}")
    runtimes = known_runtimes()
    runtime_names: Registry[str] = Registry("runtime")
    for runtime in runtimes:
        runtime_names.add(runtime, runtime)
    for index, name in enumerate(profile.runtimes):
        _known(name, runtime_names, where, f"runtimes.{index}")
    if profile.lab.transport != MANUAL:
        _known(profile.lab.transport, TRANSPORTS, where, "lab.transport", f" or {MANUAL}")
    return profile


def load_device(name_or_path: str, flag: str = "--device") -> DeviceProfile:
    """load_profile, then every name checked against the registries."""
    profile = load_profile(name_or_path, flag)
    return check_profile(profile, str(profile_path(name_or_path)))


def _known(name: str, registry: Registry, where: str, field: str, also: str = "") -> None:
    if name not in registry:
        message = registry.unknown_message(name)
        if also:
            message = message[:-1] + f"{also})"
        raise UserInputError(f"{where}: invalid device profile\n  field {field}: {message}")


__all__ = ["MANUAL", "check_profile", "known_runtimes", "load_device"]
