"""Check a bundle against its manifest: every file present, intact, listed, and nothing extra."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgedistill.bundle.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestFile,
    bundle_entries,
    sha256_file,
)
from edgedistill.documents import load_json
from edgedistill.errors import UserInputError, describe_validation


@dataclass
class VerifyReport:
    """Outcome of verify_bundle; each problem names the file it is about."""

    ok: bool
    bundle_dir: Path
    checked: int
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "bundle_dir": str(self.bundle_dir),
            "checked": self.checked,
            "problems": list(self.problems),
        }


def find_bundle_dir(path: Path) -> Path:
    """The bundle dir for a bundle dir, a run dir holding bundle/, or a manifest.json path."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such bundle or run directory")
    if path.is_file() and path.name == MANIFEST_NAME:
        return path.parent
    if not path.is_dir():
        raise UserInputError(f"{path}: not a directory")
    for candidate in (path, path / "bundle"):
        if (candidate / MANIFEST_NAME).is_file():
            return candidate
    raise UserInputError(
        f"{path}: no {MANIFEST_NAME} here nor in {path / 'bundle'}; is this a bundle or run dir?"
    )


def load_manifest(manifest_path: Path) -> Manifest:
    """Parse manifest.json against the schema; errors name the file and the field."""
    data = load_json(manifest_path, str(manifest_path), "manifest")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        fields = describe_validation(exc, "  field ", sep="\n")
        raise UserInputError(f"{manifest_path}: invalid manifest\n{fields}") from None


def _check_listed_file(bundle_dir: Path, entry: ManifestFile) -> str | None:
    path = bundle_dir / entry.path
    if path.is_symlink():
        return f"{entry.path}: is a link, a bundle holds only regular files"
    if not path.exists():
        return f"{entry.path}: missing"
    if not path.is_file():
        return f"{entry.path}: not a regular file"
    size = path.stat().st_size
    if size != entry.bytes:
        return f"{entry.path}: size is {size} bytes, manifest says {entry.bytes}"
    found = sha256_file(path)
    if found != entry.sha256:
        return f"{entry.path}: sha256 mismatch (manifest {entry.sha256}, file {found})"
    return None


def _check_artifacts(manifest: Manifest) -> list[str]:
    sha_by_path = {entry.path: entry.sha256 for entry in manifest.files}
    problems: list[str] = []
    for index, artifact in enumerate(manifest.artifacts):
        path = artifact.get("path")
        if not isinstance(path, str) or not path:
            problems.append(f"artifacts[{index}] ({artifact.get('format', '?')}): has no path")
        elif path not in sha_by_path:
            problems.append(f"{path}: artifact not listed in the manifest's files")
        elif artifact.get("sha256") != sha_by_path[path]:
            problems.append(
                f"{path}: artifact sha256 {artifact.get('sha256')} differs from its "
                f"files entry {sha_by_path[path]}"
            )
    return problems


def verify_bundle(path: Path) -> VerifyReport:
    """Verify a bundle dir (or a run dir holding bundle/) against its manifest.json.

    Raises UserInputError when there is no bundle or the manifest does not parse; a bundle
    whose files disagree with the manifest gives a report with ok=False.
    """
    bundle_dir = find_bundle_dir(Path(path))
    manifest = load_manifest(bundle_dir / MANIFEST_NAME)
    problems: list[str] = []
    listed: set[str] = set()
    for entry in manifest.files:
        if entry.path in listed:
            problems.append(f"{entry.path}: listed more than once in the manifest")
            continue
        listed.add(entry.path)
        problem = _check_listed_file(bundle_dir, entry)
        if problem:
            problems.append(problem)
    for relative, _ in bundle_entries(bundle_dir):
        if relative not in listed:
            problems.append(f"{relative}: present but not listed in the manifest")
    problems.extend(_check_artifacts(manifest))
    return VerifyReport(
        ok=not problems, bundle_dir=bundle_dir, checked=len(manifest.files), problems=problems
    )
