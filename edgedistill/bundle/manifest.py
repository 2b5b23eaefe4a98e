"""The bundle manifest: schema, sha256 of every file, tool versions, atomic manifest.json write."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edgedistill import atomic
from edgedistill.hashing import sha256_file

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
_CHUNK_BYTES = 1024 * 1024

# Tool name in the manifest -> distributions that provide it, first found wins.
_TOOL_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "edgedistill": ("edgedistill",),
    "torch": ("torch",),
    "numpy": ("numpy",),
    "onnx": ("onnx",),
    "onnxscript": ("onnxscript",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "litert-torch": ("litert-torch",),
    "ai-edge-litert": ("ai-edge-litert",),
    "coremltools": ("coremltools",),
    "tensorrt": ("tensorrt", "tensorrt-cu12", "tensorrt-cu13"),
}


class ManifestFile(BaseModel):
    """One file of the bundle: where it is (relative to the bundle dir), its hash and size."""

    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)

    @field_validator("path")
    @classmethod
    def _relative_posix_inside_bundle(cls, value: str) -> str:
        posix = PurePosixPath(value)
        if (
            not value
            or "\\" in value
            or posix.is_absolute()
            or ".." in posix.parts
            or str(posix) != value
        ):
            raise ValueError(
                f"{value!r} must be a normalised relative posix path inside the bundle"
            )
        return value


class Manifest(BaseModel):
    """manifest.json: what the bundle holds and how it was made, enough to ship and re-check it."""

    model_config = ConfigDict(extra="forbid")

    # 2 adds the sections below `files` (all optional, so a version 1 manifest still reads)
    schema_version: Literal[1, 2] = 2
    created_utc: str
    tool: dict[str, str]
    device: str
    budget_ms: float
    precision: str
    input: dict[str, Any]
    preprocessing: dict[str, Any]
    labels: list[str]
    artifacts: list[dict[str, Any]]
    measured: dict[str, Any]
    files: list[ManifestFile]
    git_commit: str | None = None  # edgedistill's commit, when it runs from a git checkout
    profile: dict[str, Any] | None = None  # the device profile the run targeted
    task: dict[str, Any] | None = None  # name, task type, split sizes, data source
    student: dict[str, Any] | None = None  # spec, family, params, MACs, precision, figures
    teacher: dict[str, Any] | None = None  # form, source, params, MACs, figures
    # per-class figures, the student -> teacher cascade (τ, coverage, accuracy), confidence
    evaluation: dict[str, Any] | None = None
    validation_sample: dict[str, Any] | None = None  # bundle/sample.py


def tool_versions() -> dict[str, str]:
    """Versions of edgedistill, torch, onnx, onnxruntime and python, from package metadata only."""
    versions: dict[str, str] = {}
    for tool, distributions in _TOOL_DISTRIBUTIONS.items():
        versions[tool] = "not installed"
        for distribution in distributions:
            try:
                versions[tool] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    versions["python"] = platform.python_version()
    return versions


def git_commit() -> str | None:
    """The commit of the git checkout edgedistill runs from (an editable install), read from
    the .git directory's files; None for an installed wheel."""
    root = Path(__file__).resolve().parents[2]
    head = root / ".git" / "HEAD"
    try:
        text = head.read_text().strip()
        if not text.startswith("ref: "):
            return text or None
        ref = text[len("ref: ") :]
        loose = root / ".git" / ref
        if loose.is_file():
            return loose.read_text().strip() or None
        for line in (root / ".git" / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0]
    except OSError:
        return None
    return None


def bundle_entries(bundle_dir: Path) -> Iterator[tuple[str, Path]]:
    """Yield (posix path relative to bundle_dir, path) of every non-directory entry, sorted.

    Symlinks (to files or directories) are yielded as entries and not followed; the
    top-level manifest.json is left out.
    """
    entries: list[tuple[str, Path]] = []
    for root, dirnames, filenames in os.walk(bundle_dir, followlinks=False):
        root_path = Path(root)
        linked_dirs = [name for name in dirnames if (root_path / name).is_symlink()]
        for name in [*filenames, *linked_dirs]:
            path = root_path / name
            relative = path.relative_to(bundle_dir).as_posix()
            if relative != MANIFEST_NAME:
                entries.append((relative, path))
    yield from sorted(entries)


def _hash_bundle_files(bundle_dir: Path) -> list[ManifestFile]:
    files: list[ManifestFile] = []
    for relative, path in bundle_entries(bundle_dir):
        if path.is_symlink() or not path.is_file():
            raise ValueError(
                f"{path}: a bundle may hold only regular files (found a link or special file)"
            )
        files.append(
            ManifestFile(path=relative, sha256=sha256_file(path), bytes=path.stat().st_size)
        )
    return files


def _checked_artifacts(
    artifacts: list[dict[str, Any]], files: list[ManifestFile]
) -> list[dict[str, Any]]:
    """Copy artifacts, filling in missing sha256; refuse paths the bundle does not hold."""
    sha_by_path = {entry.path: entry.sha256 for entry in files}
    checked: list[dict[str, Any]] = []
    for artifact in artifacts:
        path = artifact.get("path")
        if path not in sha_by_path:
            raise ValueError(
                f"artifact path {path!r} is not a file of the bundle "
                "(artifact paths are relative to the bundle dir)"
            )
        sha256 = artifact.get("sha256") or sha_by_path[path]
        if sha256 != sha_by_path[path]:
            raise ValueError(f"artifact {path}: sha256 {sha256} does not match the file on disk")
        checked.append({**artifact, "sha256": sha256})
    return checked


def write_manifest(bundle_dir: Path, **fields: Any) -> Manifest:
    """Hash every file under bundle_dir and write bundle_dir/manifest.json atomically.

    ``fields`` are the Manifest fields other than ``files`` (computed here);
    ``created_utc`` and ``tool`` default to now and ``tool_versions()``. Artifact paths are
    relative to bundle_dir; a missing artifact sha256 is filled in from the file.
    """
    if "files" in fields:
        raise TypeError("write_manifest computes 'files' itself; do not pass it")
    bundle_dir = Path(bundle_dir)
    files = _hash_bundle_files(bundle_dir)
    fields.setdefault("created_utc", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    fields.setdefault("tool", tool_versions())
    fields.setdefault("git_commit", git_commit())
    fields["artifacts"] = _checked_artifacts(list(fields.get("artifacts", [])), files)
    manifest = Manifest(**fields, files=files)
    atomic.write_text(bundle_dir / MANIFEST_NAME, manifest.model_dump_json(indent=2) + "\n")
    log.info("wrote %s (%d files)", bundle_dir / MANIFEST_NAME, len(files))
    return manifest
