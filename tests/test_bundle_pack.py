"""`bundle pack` / `bundle unpack` on a real bundle (a tiny student exported to ONNX, its outputs
recorded by onnxruntime): round trips, byte-identical packs, and archives crafted to escape the
target directory or smuggle in links, devices and unlisted files, each refused before a byte is
written."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from edgedistill.bundle import verify_bundle, write_manifest
from edgedistill.bundle.pack import ARCHIVE_SUFFIX, pack_bundle
from edgedistill.bundle.sample import write_sample
from edgedistill.export import EXPORTERS
from edgedistill.students import build_student, parse_student
from tests.conftest import invoke

SPEC = "mbv2:d=1,r=16,w=0.5"
SHAPE = (1, 32, 32)
CLASSES = 10
MODEL = "model.fp32.onnx"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run dir holding bundle/: the exported student, its validation sample recorded by
    onnxruntime, labels, preprocessing, a file in a subfolder, and the manifest. Read-only:
    tests that change it work on a copy (`fresh_run`)."""
    run = tmp_path_factory.mktemp("pack") / "run"
    bundle = run / "bundle"
    bundle.mkdir(parents=True)
    torch.manual_seed(0)
    student = build_student(parse_student(SPEC), SHAPE, CLASSES).eval()
    onnx = EXPORTERS.get("onnx")
    onnx.export(student, torch.zeros(1, *SHAPE), bundle / MODEL, precision="fp32")
    inputs = np.random.default_rng(0).standard_normal((8, *SHAPE)).astype(np.float32)
    runner = onnx.host_runner(bundle / MODEL)
    section = write_sample(bundle, inputs, {MODEL: (runner.predict(inputs), runner.runtime)})
    (bundle / "labels.txt").write_text("".join(f"{k}\n" for k in range(CLASSES)), "utf-8")
    (bundle / "preprocessing.json").write_text(json.dumps({"scale": 1 / 16}), "utf-8")
    (bundle / "runner").mkdir()
    (bundle / "runner" / "run.py").write_text("print('run the model')\n", "utf-8")
    write_manifest(
        bundle,
        device="host-cpu",
        budget_ms=2.0,
        precision="fp32",
        input={"name": "input", "shape": [1, *SHAPE], "dtype": "float32"},
        preprocessing={"scale": 1 / 16},
        labels=[str(k) for k in range(CLASSES)],
        artifacts=[{"format": "onnx", "precision": "fp32", "path": MODEL}],
        measured={},
        validation_sample=section,
    )
    return run


@pytest.fixture
def fresh_run(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


@pytest.fixture(scope="module")
def archive(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pack_bundle(run_dir, tmp_path_factory.mktemp("archive") / "run.bundle.tar.gz").archive


def _manifest_paths(bundle: Path) -> list[str]:
    manifest = json.loads((bundle / "manifest.json").read_text("utf-8"))
    return [entry["path"] for entry in manifest["files"]]


def _tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _flip_byte(path: Path, at: int = 300) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


# --- pack -----------------------------------------------------------------------------------


def test_pack_then_unpack_round_trips_and_the_bundle_still_runs(fresh_run: Path) -> None:
    packed = invoke("bundle", "pack", str(fresh_run))
    assert packed.returncode == 0, packed.stderr
    archive = fresh_run.parent / f"run{ARCHIVE_SUFFIX}"  # the default: beside the run dir
    assert archive.is_file()
    target = fresh_run.parent / "received" / "bundle"
    unpacked = invoke("bundle", "unpack", str(archive), str(target))
    assert unpacked.returncode == 0, unpacked.stderr
    assert "OK: 5 files verified" in unpacked.stdout
    assert _tree(target) == _tree(fresh_run / "bundle")
    rerun = invoke("bundle", "verify", str(target), "--run", "--json")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert [a["status"] for a in json.loads(rerun.stdout)["run"]["artifacts"]] == ["matches"]


def test_pack_is_byte_identical_twice_with_manifest_first_then_manifest_order(
    fresh_run: Path, archive: Path
) -> None:
    again = pack_bundle(fresh_run / "bundle", fresh_run.parent / "again.tar.gz").archive
    assert again.read_bytes() == archive.read_bytes()  # another copy, another time, same bytes
    with tarfile.open(archive, "r:gz") as tar:
        members = tar.getmembers()
    names = [member.name for member in members]
    assert names == ["manifest.json", *_manifest_paths(fresh_run / "bundle")]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mode, m.type) for m in members} == {
        (0, 0, "", "", 0o644, tarfile.REGTYPE)
    }
    assert len({member.mtime for member in members}) == 1
    with gzip.open(archive) as stream:  # no name or time in the gzip header either
        stream.read(1)
    assert archive.read_bytes()[4:8] == b"\x00\x00\x00\x00"


def test_pack_bundle_dir_defaults_beside_it_and_json_names_the_archive(fresh_run: Path) -> None:
    result = invoke("bundle", "pack", str(fresh_run / "bundle"), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["archive"] == str((fresh_run / f"bundle{ARCHIVE_SUFFIX}").resolve())
    assert document["members"] == 6 and len(document["sha256"]) == 64
    assert verify_bundle(fresh_run).ok  # the archive beside the bundle is not inside it


def test_pack_refuses_a_flipped_byte_naming_the_file_and_writes_nothing(fresh_run: Path) -> None:
    _flip_byte(fresh_run / "bundle" / MODEL)
    out = fresh_run.parent / "out.tar.gz"
    result = invoke("bundle", "pack", str(fresh_run), "--out", str(out))
    assert result.returncode == 1
    assert f"{MODEL}: sha256 mismatch" in result.stdout
    assert not out.exists()
    assert sorted(p.name for p in fresh_run.parent.iterdir()) == ["run"]  # no temporary left


def test_pack_refuses_an_added_file_naming_it(fresh_run: Path) -> None:
    (fresh_run / "bundle" / "runner" / "notes.txt").write_text("not in the manifest\n", "utf-8")
    result = invoke("bundle", "pack", str(fresh_run), "--json")
    assert result.returncode == 1
    problems = json.loads(result.stdout)["problems"]
    assert problems == ["runner/notes.txt: present but not listed in the manifest"]
    assert not (fresh_run.parent / f"run{ARCHIVE_SUFFIX}").exists()


def test_pack_refuses_a_file_that_changes_after_the_bundle_verified(
    fresh_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edgedistill.bundle.pack as pack_module

    def verify_then_change(path: Path):  # another process writing while the pack runs
        report = verify_bundle(path)
        _flip_byte(fresh_run / "bundle" / MODEL)
        return report

    monkeypatch.setattr(pack_module, "verify_bundle", verify_then_change)
    result = invoke("bundle", "pack", str(fresh_run))
    assert result.returncode == 1
    assert f"{MODEL}: changed while the bundle was being packed" in result.stderr
    assert sorted(p.name for p in fresh_run.parent.iterdir()) == ["run"]


def test_pack_refuses_an_archive_path_inside_the_bundle(fresh_run: Path) -> None:
    inside = fresh_run / "bundle" / "me.tar.gz"
    result = invoke("bundle", "pack", str(fresh_run), "--out", str(inside))
    assert result.returncode == 2
    assert "--out" in result.stderr and "inside the bundle" in result.stderr
    assert not inside.exists()


def test_pack_missing_dir_exits_2_naming_it(tmp_path: Path) -> None:
    result = invoke("bundle", "pack", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "nowhere" in result.stderr and "Traceback" not in result.stderr


# --- unpack: the bundle inside does not verify ----------------------------------------------


def _members(archive: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(archive, "r:gz") as tar:
        return [
            (member, tar.extractfile(member).read() if member.isreg() else None)  # type: ignore[union-attr]
            for member in tar.getmembers()
        ]


def _craft(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    """Write `members` as they are: names, types and sizes a hostile sender chose."""
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info = tarfile.TarInfo(info.name) if info.name else info
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _entry(name: str, data: bytes | None = b"x", kind: bytes = tarfile.REGTYPE, link: str = ""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, data


def _assert_nothing_written(target: Path, parent_before: set[str]) -> None:
    assert not target.exists()
    assert {p.name for p in target.parent.iterdir()} == parent_before  # no staging left behind


@pytest.fixture
def landing(tmp_path: Path) -> tuple[Path, set[str]]:
    """(target, what its parent holds now): archives are crafted elsewhere (tmp_path/crafted)."""
    parent = tmp_path / "landing"
    (parent / "neighbour").mkdir(parents=True)
    (tmp_path / "crafted").mkdir()
    return parent / "bundle", {"neighbour"}


def test_unpack_flipped_byte_exits_1_naming_the_file_and_writes_nothing(
    archive: Path, landing, tmp_path: Path
) -> None:
    target, before = landing
    members = _members(archive)
    index = [info.name for info, _ in members].index(MODEL)
    info, data = members[index]
    assert data is not None
    members[index] = (info, data[:300] + bytes([data[300] ^ 1]) + data[301:])
    crafted = _craft(tmp_path / "crafted" / "flipped.tar.gz", members)
    result = invoke("bundle", "unpack", str(crafted), str(target))
    assert result.returncode == 1
    assert f"{MODEL}: sha256 mismatch" in result.stdout
    _assert_nothing_written(target, before)


def test_unpack_member_of_another_size_exits_1_before_writing(
    archive: Path, landing, tmp_path: Path
) -> None:
    target, before = landing
    members = [
        (info, data + b"\n" if info.name == "labels.txt" and data else data)
        for info, data in _members(archive)
    ]
    crafted = _craft(tmp_path / "crafted" / "longer.tar.gz", members)
    result = invoke("bundle", "unpack", str(crafted), str(target), "--json")
    assert result.returncode == 1
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem.startswith("labels.txt: size is")
    _assert_nothing_written(target, before)


def test_unpack_then_an_added_file_fails_verify_naming_it(archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()  # an existing empty directory is a fine target
    assert invoke("bundle", "unpack", str(archive), str(target)).returncode == 0
    (target / "extra.bin").write_bytes(b"\x00")
    result = invoke("bundle", "verify", str(target))
    assert result.returncode == 1
    assert "extra.bin: present but not listed in the manifest" in result.stdout


# --- unpack: archives refused as bad input (exit 2), nothing written ------------------------


def _hostile(kind: str, members: list, outside: Path) -> list:
    """The genuine members with one hostile change of the named kind."""
    manifest, rest = members[0], members[1:]
    fifo = _entry("labels.txt", None, tarfile.FIFOTYPE)
    device = _entry("labels.txt", None, tarfile.CHRTYPE)
    device[0].devmajor, device[0].devminor = 1, 3
    changes = {
        "symlink": [manifest, _entry("labels.txt", None, tarfile.SYMTYPE, "/etc/passwd"), *rest],
        "hardlink": [manifest, _entry("labels.txt", None, tarfile.LNKTYPE, "manifest.json")],
        "absolute": [manifest, *rest, _entry(str(outside / "absolute.txt"))],
        "dotdot": [manifest, *rest, _entry("../../escaped.txt")],
        "dotdot-inside": [manifest, *rest, _entry("runner/../../escaped.txt")],
        "fifo": [manifest, fifo, *rest],
        "char-device": [manifest, device, *rest],
        "directory": [manifest, _entry("runner", None, tarfile.DIRTYPE), *rest],
        "manifest-not-first": [*rest, manifest],
        "no-manifest": rest,
        "unlisted": [manifest, *rest, _entry("runner/extra.py", b"import os\n")],
        "duplicate": [manifest, *rest, _entry("labels.txt", b"0\n1\n")],
    }
    return changes[kind]


HOSTILE = (
    "symlink", "hardlink", "absolute", "dotdot", "dotdot-inside", "fifo", "char-device",
    "directory", "manifest-not-first", "no-manifest", "unlisted", "duplicate",
)  # fmt: skip
EXPECTED = {
    "symlink": "symbolic link",
    "hardlink": "hard link",
    "absolute": "absolute path",
    "dotdot": "'..' component",
    "dotdot-inside": "'..' component",
    "fifo": "FIFO",
    "char-device": "device file",
    "directory": "directory entry",
    "manifest-not-first": "first member must be",
    "no-manifest": "first member must be",
    "unlisted": "not listed in manifest.json",
    "duplicate": "appears more than once",
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_unpack_refuses_hostile_archive_before_writing_anything(
    kind: str, archive: Path, landing, tmp_path: Path
) -> None:
    target, before = landing
    outside = tmp_path / "outside"
    outside.mkdir()
    crafted = _craft(
        tmp_path / "crafted" / f"{kind}.tar.gz", _hostile(kind, _members(archive), outside)
    )
    result = invoke("bundle", "unpack", str(crafted), str(target))
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(crafted) in result.stderr
    assert EXPECTED[kind] in result.stderr
    assert "Traceback" not in result.stderr
    _assert_nothing_written(target, before)
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crafted", "landing", "outside"]


def _not_gzip(archive: Path) -> bytes:
    return b"PK\x03\x04 this is a zip, say"


def _truncated(archive: Path) -> bytes:
    return archive.read_bytes()[: archive.stat().st_size // 2]


def _gzip_of_garbage(archive: Path) -> bytes:
    return gzip.compress(b"\x07" * 4096, mtime=0)


def _bad_crc(archive: Path) -> bytes:
    data = bytearray(archive.read_bytes())
    data[-8] ^= 0xFF  # the gzip trailer's CRC32
    return bytes(data)


@pytest.mark.parametrize("damage", [_not_gzip, _truncated, _gzip_of_garbage, _bad_crc])
def test_unpack_damaged_archive_exits_2_naming_the_file(
    damage, archive: Path, landing, tmp_path: Path
) -> None:
    target, before = landing
    damaged = tmp_path / "crafted" / "damaged.tar.gz"
    damaged.write_bytes(damage(archive))
    result = invoke("bundle", "unpack", str(damaged), str(target))
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(damaged) in result.stderr
    assert "Traceback" not in result.stderr
    _assert_nothing_written(target, before)


def test_unpack_refuses_a_non_empty_target_and_a_missing_archive(
    archive: Path, tmp_path: Path
) -> None:
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine\n", "utf-8")
    result = invoke("bundle", "unpack", str(archive), str(occupied))
    assert result.returncode == 2 and "not empty" in result.stderr
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]
    missing = invoke("bundle", "unpack", str(tmp_path / "none.tar.gz"), str(tmp_path / "new"))
    assert missing.returncode == 2 and "none.tar.gz" in missing.stderr
    assert not (tmp_path / "new").exists()


def test_unpack_creates_missing_parents_and_json_reports_the_verified_bundle(
    archive: Path, tmp_path: Path
) -> None:
    target = tmp_path / "a" / "b" / "bundle"
    result = invoke("bundle", "unpack", str(archive), str(target), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["checked"] == 5
    assert document["bundle_dir"] == str(target) and document["archive"] == str(archive)
    assert (target / "runner" / "run.py").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == ["bundle"]


def test_unpack_failure_removes_the_parents_it_created(archive: Path, tmp_path: Path) -> None:
    crafted = _craft(
        tmp_path / "unlisted.tar.gz", _hostile("unlisted", _members(archive), tmp_path)
    )
    result = invoke("bundle", "unpack", str(crafted), str(tmp_path / "new" / "deep" / "bundle"))
    assert result.returncode == 2
    assert not (tmp_path / "new").exists()
