"""One-file bundles: `bundle pack` writes a verified bundle as a deterministic .tar.gz (manifest
first, then the files in manifest order); `bundle unpack` takes one apart again, refusing
anything but that shape before it writes a byte, and verifies the result before it is in place.

An archive is untrusted input: its members are read one by one (never `extractall`), every
name and type is checked against the manifest it carries, and files are written with O_EXCL
into a fresh directory beside the target, renamed over it only once `verify_bundle` passes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Any

from pydantic import ValidationError

from edgedistill import atomic
from edgedistill.bundle.bounded import BoundedReader, InflatesTooFar
from edgedistill.bundle.manifest import MANIFEST_NAME, Manifest
from edgedistill.bundle.verify import VerifyReport, find_bundle_dir, verify_bundle
from edgedistill.errors import GoalNotMetError, UserInputError, describe_validation
from edgedistill.hashing import sha256_file

log = logging.getLogger(__name__)

ARCHIVE_SUFFIX = ".bundle.tar.gz"
MEMBER_MODE = 0o644
MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # a manifest is kilobytes; refuse to read a huge one
MAX_FILES = 10_000  # a bundle holds a handful of files; a manifest listing more is refused
# A decompression bomb: files that unpack to more than MAX_INFLATION times the archive's size
# (model weights barely compress), once over MIN_BOMB_BYTES, are refused before inflating.
MAX_INFLATION = 100
MIN_BOMB_BYTES = 64 * 1024 * 1024
_MEMBER_OVERHEAD = 16 * 1024  # one member's header blocks, pax record and padding, at most
_END_BYTES = 64 * 1024  # the end-of-archive blocks and record padding
_LISTED_PROBLEMS = 20  # members refused before reading stops
_CHUNK_BYTES = 1 << 20
_COMPRESSLEVEL = 6  # model weights barely compress; 9 costs time for nothing
# What a damaged archive raises while it is read: bad gzip data or CRC, an early end, bad tar.
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


class BundleNotVerified(GoalNotMetError):
    """The bundle (on disk, or inside an archive) does not verify: exit 1, nothing written."""

    def __init__(self, message: str, report: VerifyReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class PackResult:
    archive: Path
    bundle_dir: Path
    members: int  # manifest.json and every file it lists
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "archive": str(self.archive),
            "bundle_dir": str(self.bundle_dir),
            "members": self.members,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }


# --- pack -----------------------------------------------------------------------------------


def default_archive_path(directory: Path) -> Path:
    """`<dir name>.bundle.tar.gz` beside the bundle or run dir given (a manifest.json path
    stands for its bundle dir)."""
    directory = Path(directory).resolve()
    if directory.name == MANIFEST_NAME and directory.is_file():
        directory = directory.parent
    return directory.parent / f"{directory.name}{ARCHIVE_SUFFIX}"


def pack_bundle(directory: Path, out: Path | None = None) -> PackResult:
    """Verify the bundle at `directory` and write it as one .tar.gz at `out` (default:
    `default_archive_path`), atomically. Two packs of the same bundle are byte-identical:
    members in a fixed order, mtime from the manifest's created_utc, uid/gid 0, mode 0644,
    and a gzip header without a name or time."""
    bundle_dir = find_bundle_dir(Path(directory))
    archive = Path(out) if out is not None else default_archive_path(Path(directory))
    _refuse_archive_path(archive, bundle_dir)
    report = verify_bundle(bundle_dir)
    if not report.ok:
        raise BundleNotVerified(f"{bundle_dir}: does not verify, not packed", report)
    manifest_bytes = (bundle_dir / MANIFEST_NAME).read_bytes()
    manifest = _parse_manifest(manifest_bytes, str(bundle_dir / MANIFEST_NAME))
    try:
        with atomic.replacing(archive, suffix=".partial") as temporary:
            _write_archive(temporary, bundle_dir, manifest_bytes, manifest)
            temporary.chmod(0o644)  # a file to hand on (the temporary name is created 0600)
    except OSError as exc:
        raise UserInputError(f"--out {archive}: cannot write ({exc.strerror or exc})") from None
    log.info("packed %d files of %s into %s", len(manifest.files), bundle_dir, archive)
    return PackResult(
        archive=archive,
        bundle_dir=bundle_dir,
        members=len(manifest.files) + 1,
        bytes=archive.stat().st_size,
        sha256=sha256_file(archive),
    )


def _write_archive(path: Path, bundle_dir: Path, manifest_bytes: bytes, manifest: Manifest) -> None:
    mtime = _fixed_mtime(manifest.created_utc)
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=_COMPRESSLEVEL
        ) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.addfile(_member(MANIFEST_NAME, len(manifest_bytes), mtime), io.BytesIO(manifest_bytes))
        for entry in manifest.files:
            _add_checked(tar, bundle_dir, entry.path, entry.bytes, entry.sha256, mtime)


def _refuse_archive_path(archive: Path, bundle_dir: Path) -> None:
    if archive.is_dir():
        raise UserInputError(f"--out {archive}: is a directory; give the archive's file name")
    if archive.resolve().is_relative_to(bundle_dir.resolve()):
        raise UserInputError(
            f"--out {archive}: is inside the bundle {bundle_dir}; it would become a file the "
            "manifest does not list"
        )


def _fixed_mtime(created_utc: str) -> int:
    """Every member's mtime: when the bundle was made, so packs are reproducible (0 if the
    manifest's created_utc is not the usual form)."""
    try:
        made = datetime.strptime(created_utc, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return 0
    return int(made.replace(tzinfo=timezone.utc).timestamp())


def _member(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, MEMBER_MODE
    info.type = tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _HashingReader:
    """A file read through: what tarfile copies is hashed on the way."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.digest.update(data)
        return data


def _add_checked(
    tar: tarfile.TarFile, bundle_dir: Path, relative: str, size: int, sha256: str, mtime: int
) -> None:
    """Add one file, refusing it if it changed since the bundle verified."""
    path = bundle_dir / relative
    changed = f"{relative}: changed while the bundle was being packed; pack it again"
    with _open_unchanged(path, changed) as handle:
        if os.fstat(handle.fileno()).st_size != size:
            raise GoalNotMetError(changed)
        reader = _HashingReader(handle)
        try:
            tar.addfile(_member(relative, size, mtime), reader)  # type: ignore[arg-type]
        except OSError as exc:
            if exc.errno is not None:  # writing the archive failed (a full disk, say)
                raise
            raise GoalNotMetError(changed) from exc  # tarfile: "unexpected end of data"
        if reader.digest.hexdigest() != sha256:
            raise GoalNotMetError(changed)


def _open_unchanged(path: Path, changed: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as exc:  # gone, or replaced by something unreadable, since it verified
        raise GoalNotMetError(changed) from exc


def _parse_manifest(data: bytes, where: str) -> Manifest:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserInputError(f"{where}: not valid JSON ({exc})") from None
    try:
        return Manifest.model_validate(document)
    except ValidationError as exc:
        fields = describe_validation(exc, "  field ", sep="\n")
        raise UserInputError(f"{where}: invalid manifest\n{fields}") from None


# --- unpack ---------------------------------------------------------------------------------


def unpack_bundle(archive: Path, target: Path) -> VerifyReport:
    """Extract the bundle archive into `target` (absent or an empty directory) and verify it.

    Refused as bad input (UserInputError), before anything is written: a file that is not a
    readable .tar.gz, a first member other than manifest.json, an invalid manifest, and any
    member that is a link, a device, a FIFO or a directory, has an absolute name or a `..`
    component, repeats a name, or is not listed in the manifest. Refused as a corrupt bundle
    (BundleNotVerified, nothing written): a listed file missing from the archive or of another
    size, or extracted files that do not verify. Only a verified bundle appears at `target`.
    """
    archive, target = Path(archive), Path(target)
    _check_target(target)
    created = _missing_ancestors(target.parent)
    try:
        with _open_archive(archive) as (tar, stream):
            members, manifest = _checked_members(tar, stream, archive, target)
            _refuse_inconsistent(archive, target, members, manifest)
            report = _extract_verified(tar, archive, members, target)
    except BaseException:
        for directory in created:
            try:
                directory.rmdir()
            except OSError:
                break
        raise
    log.info("unpacked %s into %s (%d files verified)", archive, target, report.checked)
    return VerifyReport(True, target, report.checked, [])


def _extract_verified(
    tar: tarfile.TarFile, archive: Path, members: list[tarfile.TarInfo], target: Path
) -> VerifyReport:
    """Extract into a fresh directory beside `target`, verify, then rename it into place; on
    any failure the fresh directory is removed."""
    try:
        with atomic.staged_directory(target) as staging:
            staging.chmod(0o755)
            _extract(tar, archive, members, staging)
            report = verify_bundle(staging)
            if not report.ok:
                raise BundleNotVerified(
                    f"{archive}: the unpacked bundle does not verify; nothing written to {target}",
                    VerifyReport(False, target, report.checked, report.problems),
                )
    except OSError as exc:  # the disk, permissions, or someone filling `target` meanwhile
        raise UserInputError(f"{target}: cannot unpack there ({exc.strerror or exc})") from None
    return report


def _check_target(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UserInputError(f"{target}: exists and is not a directory; unpack into a new one")
    if target.is_dir() and any(target.iterdir()):
        raise UserInputError(f"{target}: not empty; unpack into a new or empty directory")


def _missing_ancestors(directory: Path) -> list[Path]:
    """The directories above the target that do not exist yet, deepest first."""
    missing = []
    for candidate in [directory, *directory.parents]:
        if candidate.exists():
            break
        missing.append(candidate)
    return missing


@contextmanager
def _open_archive(archive: Path) -> Iterator[tuple[tarfile.TarFile, BoundedReader]]:
    """The archive as a tarfile reading through a BoundedReader (limited to what a manifest
    may take until the manifest is read). Only a regular file is opened: a FIFO or device
    (given, or behind a symlink) is refused without blocking on it or reading it."""
    try:
        descriptor = os.open(archive, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        missing = isinstance(exc, FileNotFoundError)
        raise UserInputError(
            f"{archive}: no such archive file"
            if missing
            else f"{archive}: cannot read ({exc.strerror or exc})"
        ) from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UserInputError(
            f"{archive}: not a regular file (a directory, device or FIFO, or a link to one); "
            "give the .tar.gz file"
        )
    with (
        open(descriptor, "rb") as raw,
        gzip.GzipFile(fileobj=raw, mode="rb") as inflated,
    ):
        stream = BoundedReader(inflated, MAX_MANIFEST_BYTES + _MEMBER_OVERHEAD)
        with _tar_reading(stream, archive) as tar:
            yield tar, stream


def _tar_reading(stream: BoundedReader, archive: Path) -> tarfile.TarFile:
    """A tarfile reading `stream` (its first header read now); read errors are bad input."""
    try:
        return tarfile.open(fileobj=stream, mode="r:")  # type: ignore[call-overload]
    except _ARCHIVE_ERRORS as exc:
        raise UserInputError(f"{archive}: not a readable .tar.gz bundle archive ({exc})") from None
    except InflatesTooFar as exc:
        raise UserInputError(f"{archive}: its first member {exc}; refused") from None
    except OSError as exc:
        raise UserInputError(f"{archive}: cannot read ({exc.strerror or exc})") from None


def _checked_members(
    tar: tarfile.TarFile, stream: BoundedReader, archive: Path, target: Path
) -> tuple[list[tarfile.TarInfo], Manifest]:
    """Every member, read to the end (a truncated archive fails here), each one checked; the
    stream may inflate no further than the manifest's files need."""
    first = tar.next()  # read when the archive was opened (its read errors were refused there)
    if first is None or first.name != MANIFEST_NAME or not first.isreg():
        found = repr(first.name) if first is not None else "nothing"
        raise UserInputError(
            f"{archive}: not a bundle archive: its first member must be the regular file "
            f"{MANIFEST_NAME}, found {found}"
        )
    manifest = _read_manifest(tar, archive, first)
    stream.limit = _inflation_limit(archive, target, manifest, stream.tell())
    listed = {entry.path for entry in manifest.files}
    members: list[tarfile.TarInfo] = []
    problems: list[str] = []
    seen: set[str] = set()
    member: tarfile.TarInfo | None = first
    while member is not None:
        members.append(member)
        problem = _member_problem(member, listed, seen)
        seen.add(member.name)
        if problem:
            problems.append(f"member {member.name!r}: {problem}")
        if len(problems) >= _LISTED_PROBLEMS:
            problems.append("... (reading stopped here)")
            break
        member = _next_member(tar, stream, archive, manifest)
    else:
        _check_end(stream, archive)
    if problems:
        raise UserInputError(
            f"{archive}: refused, nothing written:\n" + "\n".join(f"  {p}" for p in problems)
        )
    return members, manifest


def _next_member(
    tar: tarfile.TarFile, stream: BoundedReader, archive: Path, manifest: Manifest
) -> tarfile.TarInfo | None:
    last = tar.members[-1].name if tar.members else MANIFEST_NAME
    try:
        return tar.next()
    except _ARCHIVE_ERRORS as exc:
        raise UserInputError(f"{archive}: corrupt or truncated archive ({exc})") from None
    except InflatesTooFar as exc:
        raise UserInputError(
            f"{archive}: refused, nothing written: after member {last!r} it {exc}, more than "
            f"the {len(manifest.files)} files its {MANIFEST_NAME} lists take (a decompression "
            "bomb, or members the manifest does not describe)"
        ) from None


def _check_end(stream: BoundedReader, archive: Path) -> None:
    """Read to the end of the gzip stream (its CRC and length are checked there): nothing but
    the zero padding of the end of the archive may follow the last member."""
    try:
        while chunk := stream.read(min(_CHUNK_BYTES, max(stream.limit - stream.tell(), 1))):
            if chunk.count(0) != len(chunk):
                raise UserInputError(
                    f"{archive}: refused, nothing written: data follows the end of the archive "
                    "(members a plain tar reader would not show)"
                )
    except _ARCHIVE_ERRORS as exc:
        raise UserInputError(f"{archive}: corrupt or truncated archive ({exc})") from None
    except InflatesTooFar as exc:
        raise UserInputError(
            f"{archive}: refused, nothing written: after its last member it {exc} (a "
            "decompression bomb)"
        ) from None


def _inflation_limit(archive: Path, target: Path, manifest: Manifest, position: int) -> int:
    """How far the stream may inflate: the manifest's files and their headers. Refused up
    front: more than MAX_FILES files, a decompression bomb (MAX_INFLATION), files larger than
    the free space where the target goes."""
    where = f"{archive}:{MANIFEST_NAME}"
    if len(manifest.files) > MAX_FILES:
        raise UserInputError(
            f"{where}: lists {len(manifest.files)} files; a bundle archive holds at most "
            f"{MAX_FILES}"
        )
    total = sum(entry.bytes for entry in manifest.files)
    size = archive.stat().st_size
    if total > max(MIN_BOMB_BYTES, MAX_INFLATION * size):
        raise UserInputError(
            f"{where}: its files take {total} bytes, {total // max(size, 1)} times the "
            f"archive's {size}: refused as a decompression bomb (at most {MAX_INFLATION} "
            f"times over {MIN_BOMB_BYTES} bytes)"
        )
    existing = next(p for p in [target.parent, *target.parent.parents] if p.exists())
    free = shutil.disk_usage(existing).free
    if total > free:
        raise UserInputError(
            f"{where}: its files take {total} bytes; {existing} has {free} bytes free"
        )
    return position + total + (len(manifest.files) + 1) * _MEMBER_OVERHEAD + _END_BYTES


def _read_manifest(tar: tarfile.TarFile, archive: Path, member: tarfile.TarInfo) -> Manifest:
    where = f"{archive}:{MANIFEST_NAME}"
    if member.size > MAX_MANIFEST_BYTES:
        raise UserInputError(f"{where}: {member.size} bytes, too large for a manifest")
    try:
        handle = tar.extractfile(member)
        data = handle.read() if handle is not None else b""
    except _ARCHIVE_ERRORS as exc:
        raise UserInputError(f"{archive}: corrupt or truncated archive ({exc})") from None
    return _parse_manifest(data, where)


def _member_problem(member: tarfile.TarInfo, listed: set[str], seen: set[str]) -> str | None:
    """Why this member may not be extracted, or None."""
    name = member.name
    if member.issym():
        return f"is a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "is a device file"
    if member.isfifo():
        return "is a FIFO"
    if member.isdir():
        return "is a directory entry (a bundle archive holds regular files only)"
    if not member.isreg() or member.issparse():
        return "is not a regular file"
    posix = PurePosixPath(name)
    if name.startswith("/") or posix.is_absolute():
        return "has an absolute path"
    if ".." in posix.parts:
        return "has a '..' component"
    if name in ("", ".") or "\\" in name or "\x00" in name or posix.as_posix() != name:
        return "is not a normalised relative path"
    if name in seen:
        return "appears more than once"
    if name != MANIFEST_NAME and name not in listed:
        return f"is not listed in {MANIFEST_NAME}"
    return None


def _refuse_inconsistent(
    archive: Path, target: Path, members: list[tarfile.TarInfo], manifest: Manifest
) -> None:
    """Listed files missing from the archive, or of another size: a corrupt bundle, refused
    before extraction (this also bounds what is written by the manifest's sizes)."""
    size_by_name = {member.name: member.size for member in members}
    problems = []
    for entry in manifest.files:
        if entry.path not in size_by_name:
            problems.append(f"{entry.path}: missing from the archive")
        elif size_by_name[entry.path] != entry.bytes:
            problems.append(
                f"{entry.path}: size is {size_by_name[entry.path]} bytes in the archive, "
                f"manifest says {entry.bytes}"
            )
    if problems:
        raise BundleNotVerified(
            f"{archive}: the bundle inside does not verify; nothing written to {target}",
            VerifyReport(False, target, len(manifest.files), problems),
        )


def _extract(
    tar: tarfile.TarFile, archive: Path, members: list[tarfile.TarInfo], staging: Path
) -> None:
    """Write each (checked) member under `staging`: new files only, links never followed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for member in members:
        destination = staging.joinpath(*member.name.split("/"))
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(destination, flags, MEMBER_MODE)
        except OSError as exc:  # a name that is both a file and a folder, say
            raise UserInputError(
                f"{archive}: member {member.name!r} cannot be written ({exc.strerror})"
            ) from None
        with os.fdopen(descriptor, "wb") as out:
            source = _member_stream(tar, archive, member)
            try:
                while chunk := source.read(_CHUNK_BYTES):
                    out.write(chunk)
            except _ARCHIVE_ERRORS as exc:
                raise UserInputError(
                    f"{archive}: corrupt or truncated archive at {member.name!r} ({exc})"
                ) from None


def _member_stream(tar: tarfile.TarFile, archive: Path, member: tarfile.TarInfo) -> IO[bytes]:
    try:
        stream = tar.extractfile(member)
    except _ARCHIVE_ERRORS as exc:
        raise UserInputError(f"{archive}: corrupt or truncated archive ({exc})") from None
    if stream is None:
        raise UserInputError(f"{archive}: member {member.name!r} holds no data")
    return stream
