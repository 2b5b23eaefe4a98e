"""The bundle a device team ships: manifest with sha256 of every file, verification, model card."""

from edgedistill.bundle.card import render_model_card
from edgedistill.bundle.manifest import Manifest, ManifestFile, tool_versions, write_manifest
from edgedistill.bundle.verify import VerifyReport, verify_bundle

__all__ = [
    "Manifest",
    "ManifestFile",
    "VerifyReport",
    "render_model_card",
    "tool_versions",
    "verify_bundle",
    "write_manifest",
]
