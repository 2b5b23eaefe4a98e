"""Hostile bundle archives for `bundle unpack`: built in the test from a real packed bundle (a
tiny student exported to ONNX), each with one hostile change: escaping names, links, devices,
FIFOs, entries that replace the target, duplicate or missing manifests, huge member counts,
decompression bombs, damaged and non-gzip files, archives that are links, occupied targets.
Each is refused naming the archive (and the member), nothing is written outside the target,
and no half-unpacked target is left at the final path."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import invoke
from tests.reliability.record import Tally
from tests.test_bundle_pack import MODEL, _craft, _entry, _members, archive, run_dir

__all__ = ["archive", "run_dir"]  # the packed bundle every case starts from (module fixtures)

AREA = "archives"
GUARANTEE = (
    "`bundle unpack` refuses a hostile archive (escaping names, links, devices, FIFOs, "
    "duplicate or missing manifests, huge member counts, decompression bombs, damaged files, "
    "links as archives, occupied targets) naming the archive and the member, writes nothing "
    "outside the target and leaves no half-unpacked target."
)
HOW = (
    "Each archive is a real packed bundle altered with tarfile/gzip in the test; a case holds "
    "when unpack exits 2 (1 where the README says a bundle that does not verify exits 1) "
    "without a traceback, names the archive (or target) and member, and the target, its "
    "parent, a sentinel folder outside and the test's folder are as they were."
)
MiB = 1 << 20


@dataclass
class Landing:
    """Where a case unpacks: tmp/landing/bundle, with a sentinel folder tmp/outside."""

    root: Path
    crafted: Path  # archives are written here
    target: Path
    outside: Path


def _landing(root: Path) -> Landing:
    (root / "landing" / "neighbour").mkdir(parents=True)
    (root / "outside").mkdir()
    (root / "outside" / "sentinel.txt").write_text("keep\n", "utf-8")
    (root / "crafted").mkdir()
    return Landing(root, root / "crafted", root / "landing" / "bundle", root / "outside")


def _snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under `root` (but crafted/) with a file's bytes or a link's target."""
    seen: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith("crafted/"):
            continue
        if path.is_symlink():
            seen[relative] = "-> " + os.readlink(path)
        elif path.is_file():
            seen[relative] = path.read_bytes()
        else:
            seen[relative] = "dir"
    return seen


# --- building archives ------------------------------------------------------------------------


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 0):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size
    return info


def _tar_bytes(members: list, format: int = tarfile.PAX_FORMAT, close: bool = True) -> bytes:
    """The uncompressed tar of (TarInfo, data) members, optionally without its end blocks."""
    buffer = io.BytesIO()
    tar = tarfile.open(fileobj=buffer, mode="w", format=format)  # noqa: SIM115 (closed below)
    for info, data in members:
        if data is not None:
            info.size = len(data)
        tar.addfile(info, io.BytesIO(data) if data is not None else None)
    if close:
        tar.close()
        return buffer.getvalue()
    tar.fileobj = io.BytesIO()  # leave out the end-of-archive blocks
    return buffer.getvalue()


def _zeros_gzip(size: int, byte: bytes = b"\x00") -> bytes:
    """`size` bytes of `byte` as concatenated gzip members (one 1 MiB member repeated): a few
    kilobytes per MiB, built in no time."""
    chunk = gzip.compress(byte * MiB, mtime=0)
    return chunk * (size // MiB)


def _header_only(info: tarfile.TarInfo) -> bytes:
    """A member's header blocks, without its data."""
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


def _manifest_with(manifest_bytes: bytes, change: Callable[[dict], None]) -> bytes:
    document = json.loads(manifest_bytes)
    change(document)
    return json.dumps(document, indent=2).encode()


@dataclass
class Case:
    name: str
    build: Callable[[list, Landing, Path], Path]  # (genuine members, landing, archive) -> file
    named: tuple[str, ...] = ()  # besides the archive: what the message must name
    exit_code: int = 2
    names_archive: bool = True
    before: Callable[[Landing], None] | None = None  # prepares the target


def _members_case(change: Callable[[list, Landing], list]):
    def build(members: list, landing: Landing, genuine: Path) -> Path:
        return _craft(landing.crafted / "hostile.tar.gz", change(members, landing))

    return build


def _bytes_case(make: Callable[[list, Landing, Path], bytes]):
    def build(members: list, landing: Landing, genuine: Path) -> Path:
        path = landing.crafted / "hostile.tar.gz"
        path.write_bytes(make(members, landing, genuine))
        return path

    return build


def _after(extra: list) -> Callable[[list, Landing], list]:
    return lambda members, landing: [*members, *extra]


def _first_then(extra: Callable[[Landing], list]) -> Callable[[list, Landing], list]:
    return lambda members, landing: [members[0], *extra(landing), *members[1:]]


def _device(kind: bytes, name: str = "labels.txt"):
    info, data = _entry(name, None, kind)
    info.devmajor, info.devminor = (1, 3) if kind == tarfile.CHRTYPE else (8, 0)
    return info, data


def _trailing_bomb(size: int, byte: bytes) -> Callable[[list, Landing, Path], bytes]:
    """The genuine archive followed, in the same gzip stream, by `size` bytes of `byte`."""
    return lambda members, landing, genuine: genuine.read_bytes() + _zeros_gzip(size, byte)


def _declared_bomb(size: int) -> Callable[[list, Landing, Path], bytes]:
    """A manifest that lists model.fp32.onnx as `size` bytes, and that member really holding
    `size` zero bytes: far more than the archive's size could honestly unpack to."""

    def make(members: list, landing: Landing, genuine: Path) -> bytes:
        manifest_info, manifest_bytes = members[0]

        def grow(document: dict) -> None:
            for entry in document["files"]:
                if entry["path"] == MODEL:
                    entry["bytes"] = size

        manifest = _manifest_with(manifest_bytes, grow)
        head = _tar_bytes([(_info("manifest.json"), manifest)], close=False)
        return gzip.compress(head + _header_only(_info(MODEL, size=size))) + _zeros_gzip(size)

    return make


def _member_bigger_than_listed(size: int) -> Callable[[list, Landing, Path], bytes]:
    """The genuine manifest, then labels.txt whose header declares `size` bytes of zeros."""

    def make(members: list, landing: Landing, genuine: Path) -> bytes:
        head = _tar_bytes([members[0]], close=False)
        return gzip.compress(head + _header_only(_info("labels.txt", size=size))) + _zeros_gzip(
            size
        )

    return make


def _pax_bomb(size: int) -> Callable[[list, Landing, Path], bytes]:
    """A first member whose pax extended header declares `size` bytes (read into memory by a
    naive reader)."""

    def make(members: list, landing: Landing, genuine: Path) -> bytes:
        pax = _info("././@PaxHeader", tarfile.XHDTYPE, size=size)
        return gzip.compress(_header_only(pax)) + _zeros_gzip(size, b"9")

    return make


def _many_members(count: int) -> Callable[[list, Landing, Path], bytes]:
    def make(members: list, landing: Landing, genuine: Path) -> bytes:
        tiny = [(_info(f"runner/m{index:06d}"), b"") for index in range(count)]
        return gzip.compress(_tar_bytes([members[0], *tiny], format=tarfile.USTAR_FORMAT), 1)

    return make


def _many_listed(count: int) -> Callable[[list, Landing, Path], bytes]:
    """A manifest listing `count` tiny files (and nothing else in the archive)."""

    def make(members: list, landing: Landing, genuine: Path) -> bytes:
        empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        files = [{"path": f"f/{i:06d}", "sha256": empty, "bytes": 0} for i in range(count)]
        manifest = _manifest_with(members[0][1], lambda d: d.update(files=files))
        return gzip.compress(_tar_bytes([(_info("manifest.json"), manifest)]))

    return make


def _hidden_after_end(members: list, landing: Landing, genuine: Path) -> bytes:
    """A second tar (with an escaping member) after the genuine one's end blocks."""
    hidden = _tar_bytes([(_info("../hidden.txt"), b"escaped\n")])
    return gzip.compress(_tar_bytes(members) + hidden)


def _changed_sha(members: list, landing: Landing) -> list:
    def flip(document: dict) -> None:
        entry = next(e for e in document["files"] if e["path"] == "labels.txt")
        entry["sha256"] = "0" * 64

    return [(members[0][0], _manifest_with(members[0][1], flip)), *members[1:]]


def _manifest_listing(path: str) -> Callable[[list, Landing], list]:
    def change(members: list, landing: Landing) -> list:
        empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        add = {"path": path, "sha256": empty, "bytes": 0}
        manifest = _manifest_with(members[0][1], lambda d: d["files"].append(add))
        return [(members[0][0], manifest), *members[1:], (_info(path), b"")]

    return change


def _huge_manifest(members: list, landing: Landing) -> list:
    padded = members[0][1][:-2] + b" " * (17 * MiB) + members[0][1][-2:]
    return [(members[0][0], padded), *members[1:]]


def _symlink_archive(to: Callable[[Landing], Path]):
    def build(members: list, landing: Landing, genuine: Path) -> Path:
        path = landing.crafted / "link.tar.gz"
        path.symlink_to(to(landing))
        return path

    return build


def _fifo(landing: Landing) -> Path:
    fifo = landing.crafted / "pipe"
    os.mkfifo(fifo)
    return fifo


def _loop(landing: Landing) -> Path:
    other = landing.crafted / "loop.tar.gz"
    other.symlink_to(landing.crafted / "link.tar.gz")
    return other


def _genuine(members: list, landing: Landing, genuine: Path) -> Path:
    return genuine


def _occupied(landing: Landing) -> None:
    landing.target.mkdir()
    (landing.target / "keep.txt").write_text("mine\n", "utf-8")


def _target_link(landing: Landing) -> None:
    (landing.outside / "empty").mkdir()
    landing.target.symlink_to(landing.outside / "empty")


def _target_file(landing: Landing) -> None:
    landing.target.write_text("a file\n", "utf-8")


def _cases(scale: int) -> list[Case]:
    """Every hostile archive; `scale` sizes the member counts and bombs (1: CI, 10: slow)."""
    sym, lnk, fifo = tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE
    bomb = 256 * MiB * scale
    listed = 20_000 if scale == 1 else 100_000  # the latter's manifest is still under 16 MiB
    return [
        Case("dotdot", _members_case(_after([_entry("../x")])), ("../x",)),
        Case("dotdot-deep", _members_case(_after([_entry("a/../../x")])), ("a/../../x",)),
        Case("dotdot-to-sentinel",
             _members_case(_after([_entry("../../outside/sentinel.txt", b"owned")])),
             ("../../outside/sentinel.txt",)),
        Case("absolute", _members_case(lambda m, land: [*m, _entry(str(land.outside / "abs"))]),
             ("absolute path",)),
        Case("symlink-to-root-then-file", _members_case(_first_then(lambda land: [
            _entry("runner/root", None, sym, "/"), _entry("runner/root/tmp/x")])),
             ("runner/root",)),
        Case("symlink-to-dotdot-then-file", _members_case(_first_then(lambda land: [
            _entry("up", None, sym, ".."), _entry("up/escaped.txt")])), ("'up'",)),
        Case("symlink-outside", _members_case(lambda m, land: [
            m[0], _entry("labels.txt", None, sym, str(land.outside)), *m[1:]]),
             ("labels.txt", "symbolic link")),
        Case("hardlink-outside", _members_case(lambda m, land: [
            m[0], _entry("labels.txt", None, lnk, str(land.outside / "sentinel.txt"))]),
             ("labels.txt", "hard link")),
        Case("hardlink-dotdot", _members_case(_first_then(lambda land: [
            _entry("runner/x", None, lnk, "../../outside/sentinel.txt")])),
             ("runner/x", "hard link")),
        Case("char-device", _members_case(lambda m, land: [m[0], _device(tarfile.CHRTYPE),
             *m[1:]]), ("labels.txt", "device")),
        Case("block-device", _members_case(lambda m, land: [m[0], _device(tarfile.BLKTYPE),
             *m[1:]]), ("labels.txt", "device")),
        Case("fifo", _members_case(_first_then(lambda land: [_entry("labels.txt", None, fifo)])),
             ("labels.txt", "FIFO")),
        Case("dot-directory-replaces-target",
             _members_case(_first_then(lambda land: [_entry(".", None, tarfile.DIRTYPE)])),
             ("'.'",)),
        Case("dot-symlink-replaces-target", _members_case(_first_then(lambda land: [
            _entry(".", None, sym, str(land.outside))])), ("'.'",)),
        Case("dot-slash-name", _members_case(_after([_entry("./")])), ("'./'",)),
        Case("directory-entry", _members_case(_first_then(lambda land: [
            _entry("runner", None, tarfile.DIRTYPE)])), ("runner", "directory")),
        Case("duplicate-different", _members_case(_after([_entry("labels.txt", b"evil\n")])),
             ("labels.txt", "more than once")),
        Case("second-manifest", _members_case(lambda m, land: [*m, (m[0][0], b"{}")]),
             ("manifest.json", "more than once")),
        Case("manifest-not-first", _members_case(lambda m, land: [*m[1:], m[0]]),
             ("manifest.json",)),
        Case("manifest-missing", _members_case(lambda m, land: m[1:]), ("manifest.json",)),
        Case("manifest-sha256-mismatch", _members_case(_changed_sha), ("labels.txt", "sha256"),
             exit_code=1),
        Case("manifest-lists-outside-path", _members_case(_manifest_listing("../escaped")),
             ("manifest.json", "../escaped")),
        Case("manifest-17MiB", _members_case(_huge_manifest), ("manifest.json", "too large")),
        Case("backslash-name", _members_case(_after([_entry("..\\x")])), ("..\\\\x",)),
        Case("gnu-longname-dotdot", _bytes_case(lambda m, land, g: gzip.compress(_tar_bytes(
            [*m, _entry("a" * 120 + "/../../../escaped.txt")], format=tarfile.GNU_FORMAT))),
             ("escaped.txt", "'..'")),
        Case(f"{5000 * scale}-tiny-members", _bytes_case(_many_members(5000 * scale)),
             ("runner/m000000", "not listed")),
        Case(f"manifest-lists-{listed}-files", _bytes_case(_many_listed(listed)),
             ("manifest.json", "at most")),
        Case(f"gzip-bomb-{bomb // MiB}MiB-zeros-after-the-end",
             _bytes_case(_trailing_bomb(bomb, b"\x00")), ("inflates past",)),
        Case("gzip-bomb-text-after-the-end", _bytes_case(_trailing_bomb(64 * MiB, b"A")),
             ("data follows the end",)),
        Case(f"member-declared-{bomb // MiB}MiB-in-manifest", _bytes_case(_declared_bomb(bomb)),
             ("manifest.json", "decompression bomb")),
        Case(f"member-{bomb // MiB}MiB-listed-smaller", _bytes_case(
            _member_bigger_than_listed(bomb)), ("manifest.json", "inflates past")),
        Case(f"pax-header-{bomb // MiB}MiB", _bytes_case(_pax_bomb(bomb)), ("inflates past",)),
        Case("hidden-tar-after-the-end", _bytes_case(_hidden_after_end),
             ("data follows the end",)),
        Case("not-gzip", _bytes_case(lambda m, land, g: b"PK\x03\x04 a zip, say" * 64),
             ("not a readable",)),
        Case("truncated", _bytes_case(lambda m, land, g: g.read_bytes()[: g.stat().st_size // 2]),
             ("truncated",)),
        Case("gzip-of-garbage", _bytes_case(lambda m, land, g: gzip.compress(b"\x07" * 4096)),
             ("not a readable",)),
        Case("raw-deflate", _bytes_case(lambda m, land, g: zlib.compress(g.read_bytes())),
             ("not a readable",)),
        Case("garbage-after-gzip", _bytes_case(lambda m, land, g: g.read_bytes() + b"junk" * 9),
             ()),
        Case("archive-symlink-to-dev-zero", _symlink_archive(lambda land: Path("/dev/zero")),
             ("not a regular file",)),
        Case("archive-symlink-to-fifo", _symlink_archive(_fifo), ("not a regular file",)),
        Case("archive-symlink-loop", _symlink_archive(_loop), ()),
        Case("archive-is-a-directory", lambda m, land, g: land.outside, ("not a regular file",)),
        Case("target-exists-with-files", _genuine, ("not empty",), names_archive=False,
             before=_occupied),
        Case("target-symlink-to-outside", _genuine, ("not a directory",), names_archive=False,
             before=_target_link),
        Case("target-is-a-file", _genuine, ("not a directory",), names_archive=False,
             before=_target_file),
    ]  # fmt: skip


def _try(tally: Tally, case: Case, members: list, genuine: Path, root: Path) -> None:
    landing = _landing(root)
    if case.before is not None:
        case.before(landing)
    crafted = case.build(members, landing, genuine)
    before = _snapshot(landing.root)
    result = invoke("bundle", "unpack", str(crafted), str(landing.target))
    said = " ".join((result.stderr + result.stdout).split())
    wanted = ((str(crafted),) if case.names_archive else (str(landing.target),)) + case.named
    unwrapped = "".join(said.split())  # rich wraps long paths at the terminal's width
    missing = [f for f in wanted if f not in said and "".join(f.split()) not in unwrapped]
    after = _snapshot(landing.root)
    changed = sorted(set(before) ^ set(after) | {k for k in before if before[k] != after.get(k)})
    if "Traceback" in result.stderr:
        tally.broke(case.name, "traceback: " + result.stderr.strip().splitlines()[-1][:200])
    elif result.returncode != case.exit_code:
        tally.broke(case.name, f"exit {result.returncode}, not {case.exit_code}: {said[-200:]}")
    elif changed:
        tally.broke(case.name, f"written or changed: {changed[:5]}")
    elif missing:
        tally.broke(case.name, f"the message does not name {missing}: {said[:300]}")
    else:
        tally.held(case.name)


def _run(cases: list[Case], archive: Path, tmp_path: Path, request) -> None:
    tally = Tally(guarantee=GUARANTEE, how=HOW, area=AREA)
    members = _members(archive)
    for index, case in enumerate(cases):
        _try(tally, case, members, archive, tmp_path / f"{index:02d}-{case.name}")
    tally.report(request.node.nodeid)


def test_hostile_archives_are_refused_and_nothing_is_written_outside(archive, tmp_path, request):
    _run(_cases(scale=1), archive, tmp_path, request)


@pytest.mark.slow
def test_hostile_archives_at_full_size_are_refused(archive, tmp_path, request):
    """The issue's counts: 100k tiny members, multi-GiB bombs."""
    _run(_cases(scale=20), archive, tmp_path, request)


# --- fuzzed members --------------------------------------------------------------------------

FUZZ_GUARANTEE = (
    "`bundle unpack` refuses a packed bundle with any extra or replaced member (name, type, "
    "link target drawn from hostile pieces) and writes nothing outside the target."
)
FUZZ_HOW = (
    "hypothesis (derandomized) inserts or substitutes members built from '..', '/', '.', "
    "link targets and every tar member type into a real packed bundle; a case holds when "
    "unpack exits 2 without a traceback, names the archive, and nothing changed on disk."
)
_PIECES = st.sampled_from(["..", ".", "", "a", "runner", "labels.txt", "manifest.json", "/",
                           "~", "outside", "sentinel.txt", "..\\x"])  # fmt: skip
_NAMES = st.lists(_PIECES, min_size=1, max_size=5).map("/".join)
_TYPES = st.sampled_from([tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE,
                          tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE,
                          tarfile.CONTTYPE])  # fmt: skip
_MEMBER = st.tuples(_NAMES, _TYPES, _NAMES, st.binary(max_size=16))


def _fuzz(archive: Path, tmp_path: Path, request, examples: int) -> None:
    tally = Tally(guarantee=FUZZ_GUARANTEE, how=FUZZ_HOW, area=AREA)
    members = _members(archive)

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(extra=st.lists(_MEMBER, min_size=1, max_size=3), at=st.integers(0, 6))
    def attempt(extra, at: int) -> None:
        built = []
        for name, kind, link, data in extra:
            info = _info(name or "x", kind, link)
            regular = kind in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
            built.append((info, data if regular else None))
        hostile = [*members[:at], *built, *members[at:]]
        described = [(name, kind.decode(), link) for name, kind, link, _ in extra]
        case = Case(f"{described} at {at}", _members_case(lambda m, land: hostile))
        _try(tally, case, members, archive, tmp_path / f"{tally.tried:04d}")

    attempt()
    tally.report(request.node.nodeid)


def test_fuzzed_members_are_refused(archive, tmp_path, request):
    _fuzz(archive, tmp_path, request, examples=15)


@pytest.mark.slow
def test_many_fuzzed_members_are_refused(archive, tmp_path, request):
    _fuzz(archive, tmp_path, request, examples=500)
