"""What an exporter may need beyond the student: preprocessing, labels, targets, upstream files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgedistill.profiles import DeviceProfile
    from edgedistill.records.artifact import Artifact
    from edgedistill.tasks.recipe import Preprocessing


@dataclass(frozen=True)
class ExportContext:
    """Inputs shared by the exporters of one chain; `upstream` grows as the chain runs."""

    preprocessing: Preprocessing | None = None  # Core ML declares it on its image input
    labels: tuple[str, ...] = ()
    device: str | None = None
    min_deployment_target: str | None = None  # Core ML, e.g. "iOS17"
    # Where min_deployment_target came from, for messages: a flag or a profile field.
    min_deployment_target_origin: str = "--min-deployment-target"
    upstream: dict[str, Artifact] = field(default_factory=dict)  # format -> artifact written

    @classmethod
    def for_profile(
        cls,
        profile: DeviceProfile,
        preprocessing: Preprocessing | None = None,
        labels: tuple[str, ...] | list[str] = (),
    ) -> ExportContext:
        """The context a device profile implies (its Core ML target, among others)."""
        return cls(
            preprocessing=preprocessing,
            labels=tuple(labels),
            device=profile.name,
            min_deployment_target=profile.constraints.min_deployment_target,
            min_deployment_target_origin=(
                f"profile {profile.name}: constraints.min_deployment_target"
            ),
        )
