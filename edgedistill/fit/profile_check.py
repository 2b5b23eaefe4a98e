"""A device profile's names checked against the registries that define them: deploy formats
against the exporters, runtimes against the runtimes those exporters' artifacts run on, the lab
transport against the transports (or `manual`). The profile schema itself lists none of them,
so a new exporter or transport is known to every profile the moment it registers."""

from __future__ import annotations

from edgedistill.errors import UserInputError
from edgedistill.export import EXPORTERS
from edgedistill.lab.transports import TRANSPORTS
from edgedistill.profiles import MANUAL, DeviceProfile, load_profile, profile_path
from edgedistill.registry import unknown_name


def known_runtimes() -> list[str]:
    return sorted({EXPORTERS.get(name).runs_on for name in EXPORTERS})


def check_profile(profile: DeviceProfile, where: str) -> DeviceProfile:
    """Refuse a name no registry knows, naming `where` (the profile file) and the field."""
    formats, runtimes = EXPORTERS.names(), known_runtimes()
    checks = [
        (f"deploy.formats.{i}", "export format", n, formats)
        for i, n in enumerate(profile.deploy.formats)
    ]
    checks += [(f"runtimes.{i}", "runtime", n, runtimes) for i, n in enumerate(profile.runtimes)]
    transports = [*TRANSPORTS.names(), MANUAL]
    checks.append(("lab.transport", "lab transport", profile.lab.transport, transports))
    for field, kind, name, known in checks:
        if name not in known:
            problem = unknown_name(kind, name, known)
            raise UserInputError(f"{where}: invalid device profile\n  field {field}: {problem}")
    return profile


def load_device(name_or_path: str, flag: str = "--device") -> DeviceProfile:
    """load_profile, then every name checked against the registries."""
    profile = load_profile(name_or_path, flag)
    return check_profile(profile, str(profile_path(name_or_path)))
