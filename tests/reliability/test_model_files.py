"""Damaged and hostile model files: ONNX files whose external data points outside their folder
are refused before anything opens that data, and truncated or bit-flipped ONNX, TFLite and
ONNX-teacher files, opened the way the toolkit opens them (`bundle verify --run`, the ONNX
teacher's first load), each end as an error record naming the file, never a crash or a hang.

Everything here is real: a student exported by the product to ONNX and TFLite, a teacher
exported by torch.onnx, their runtimes (onnxruntime, LiteRT) run in the product's child process.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from edgedistill.bundle import write_manifest
from edgedistill.bundle.sample import write_sample
from edgedistill.child import TIMEOUT_ENV, run_child
from edgedistill.errors import UserInputError
from edgedistill.export import EXPORTERS
from edgedistill.onnx_external import external_locations
from edgedistill.students import build_student, parse_student
from edgedistill.tasks.task import load_task
from edgedistill.teachers import prepare_teacher
from tests.byo_support import image_folder, tiny_teacher_file
from tests.conftest import invoke
from tests.lab_fixtures import runaway_onnx
from tests.reliability.record import Tally

AREA = "model-files"
SPEC, SHAPE, CLASSES = "mbv2:d=1,r=16,w=0.5", (1, 32, 32), 10
TEACHER_SHAPE = (3, 8, 8)
MUTANT_TIMEOUT_S = 30  # the child's limit for a damaged file; a hang past it is a broken case
RUNAWAY_TIMEOUT_S = 3


# --- real artifacts -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The digits-shaped student exported to ONNX and TFLite (fp32) by the product's exporters,
    with its outputs on 4 inputs recorded by each runtime (what a run records in its bundle)."""
    folder = tmp_path_factory.mktemp("artifacts")
    torch.manual_seed(0)
    student = build_student(parse_student(SPEC), SHAPE, CLASSES).eval()
    example = torch.zeros(1, *SHAPE)
    inputs = np.random.default_rng(0).standard_normal((4, *SHAPE)).astype(np.float32)
    found = {}
    for fmt, name in (("onnx", "model.fp32.onnx"), ("tflite", "model.fp32.tflite")):
        EXPORTERS.get(fmt).export(student, example, folder / name, precision="fp32")
        runner = EXPORTERS.get(fmt).host_runner(folder / name)
        found[fmt] = {
            "name": name,
            "bytes": (folder / name).read_bytes(),
            "outputs": runner.predict(inputs),
            "runtime": runner.runtime,
            "inputs": inputs,
        }
    return found


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An image folder (3 classes, 3x8x8) and the tiny teacher exported to ONNX by torch."""
    root = tmp_path_factory.mktemp("teacher")
    data = image_folder(root / "images", classes=3, per_class=10, size=(8, 8))
    namespace: dict = {}
    exec(tiny_teacher_file(root).read_text(), namespace)
    torch.manual_seed(0)
    model = namespace["build"](num_classes=3, in_channels=3).eval()
    path = root / "teacher.onnx"
    torch.onnx.export(
        model,
        (torch.zeros(1, *TEACHER_SHAPE),),
        path,
        dynamo=True,
        external_data=False,
        verbose=False,
        dynamic_shapes=({0: torch.export.Dim("batch")},),
    )
    return {"data": f"imagefolder:{data}", "path": path, "bytes": path.read_bytes()}


def _bundle(folder: Path, artifact: dict, fmt: str, model_bytes: bytes) -> Path:
    """A bundle holding one artifact (`model_bytes`) with the outputs recorded for the intact
    file, its manifest rewritten for these bytes (so the re-run, not the hash, judges them)."""
    bundle = folder / "bundle"
    bundle.mkdir(parents=True)
    name = artifact["name"]
    (bundle / name).write_bytes(model_bytes)
    section = write_sample(
        bundle, artifact["inputs"], {name: (artifact["outputs"], artifact["runtime"])}
    )
    write_manifest(
        bundle,
        device="host-cpu",
        budget_ms=2.0,
        precision="fp32",
        input={"name": "input", "shape": [1, *SHAPE], "dtype": "float32"},
        preprocessing={},
        labels=[str(k) for k in range(CLASSES)],
        artifacts=[{"format": fmt, "precision": "fp32", "path": name}],
        measured={},
        validation_sample=section,
    )
    return bundle


def _verify_run(bundle: Path, name: str, timeout_s: float) -> tuple[str | None, dict | None]:
    """(why the case broke or None, the artifact's record): `bundle verify --run --json` must
    end with exit 0 and "matches", or exit 1 with "fails"/"differs" naming the file, no
    traceback, within the time limit."""
    started = time.monotonic()
    result = invoke(
        "bundle", "verify", str(bundle), "--run", "--json", env={TIMEOUT_ENV: f"{timeout_s:g}"}
    )
    elapsed = time.monotonic() - started
    if "Traceback" in result.stderr:
        return f"traceback: {result.stderr[-300:]}", None
    if elapsed > timeout_s + 30:
        return f"took {elapsed:.0f} s, past the {timeout_s:g} s limit", None
    try:
        document = json.loads(result.stdout)
        (record,) = document["run"]["artifacts"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"exit {result.returncode}, no JSON record ({exc}): {result.stderr[-200:]}", None
    if result.returncode == 0 and record["status"] == "matches":
        return None, record
    named = any(problem.startswith(name) for problem in document["problems"])
    if result.returncode == 1 and record["status"] in ("fails", "differs") and named:
        return None, record
    return f"exit {result.returncode}, status {record['status']}: {record['detail']}", record


def _load_teacher(path: Path, data: str) -> tuple[str | None, str]:
    """(why the case broke or None, what happened): the ONNX teacher planned as fit and distill
    plan it; a refusal must name the file, anything else escaping is broken."""
    try:
        task = load_task(data=data, teacher=str(path))
        prepare_teacher(task.recipe, task.data, task.teacher_names)
    except UserInputError as exc:
        message = str(exc)
        return (None if str(path) in message else f"refusal does not name the file: {message}"), (
            message
        )
    except Exception as exc:  # noqa: BLE001 - anything else escaping is the finding
        return f"{type(exc).__name__} escaped: {str(exc)[:200]}", ""
    return None, "loaded"


# --- damaged files ----------------------------------------------------------------------------


def _truncate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    cut = rng.randrange(0, len(data))
    return f"truncated at {cut}", data[:cut]


def _flip_bits(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    mutable = bytearray(data)
    flips = rng.randint(1, 8)
    for _ in range(flips):
        mutable[rng.randrange(len(mutable))] ^= 1 << rng.randrange(8)
    return f"{flips} bits flipped", bytes(mutable)


def _random_bytes(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    mutable = bytearray(data)
    count = rng.randint(1, 16)
    for _ in range(count):
        mutable[rng.randrange(len(mutable))] = rng.randrange(256)
    return f"{count} bytes overwritten", bytes(mutable)


def _zero_range(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    start = rng.randrange(len(data))
    length = rng.choice([4, 64, 1024, len(data)])
    end = min(len(data), start + length)
    return f"zeroed {start}:{end}", data[:start] + bytes(end - start) + data[end:]


def _duplicate_chunk(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    start = rng.randrange(len(data))
    chunk = data[start : start + rng.choice([8, 256, 4096])]
    at = rng.randrange(len(data))
    return f"{len(chunk)} bytes from {start} repeated at {at}", data[:at] + chunk + data[at:]


def _header_bits(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """Flips in the first 64 bytes, where the format's offsets and tags sit."""
    mutable = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        mutable[rng.randrange(min(64, len(mutable)))] ^= 1 << rng.randrange(8)
    return "header bits flipped", bytes(mutable)


MUTATIONS: dict[str, Callable[[bytes, random.Random], tuple[str, bytes]]] = {
    "truncate": _truncate,
    "flip": _flip_bits,
    "bytes": _random_bytes,
    "zero": _zero_range,
    "duplicate": _duplicate_chunk,
    "header": _header_bits,
}


def _mutants(data: bytes, count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    kinds = sorted(MUTATIONS)
    for index in range(count):
        kind = kinds[index % len(kinds)]
        how, mutated = MUTATIONS[kind](data, rng)
        yield f"#{index} {kind} ({how})", mutated


DAMAGED_GUARANTEE = (
    "A truncated or bit-flipped ONNX, TFLite or ONNX-teacher file, opened by `bundle "
    "verify --run` or as a teacher, ends as a record naming the file (refused, crashed with "
    "signal N, timed out) or as outputs that match the recorded ones; the toolkit never "
    "crashes, hangs or prints a traceback."
)
DAMAGED_HOW = (
    "Seeded mutations (truncation, bit flips, overwritten, zeroed and repeated bytes) of a "
    "student exported to ONNX and TFLite and of a torch-exported ONNX teacher, each run through "
    "the CLI's bundle verify --run (its manifest rewritten to the mutant) or the teacher's "
    "planning; held when it ended with exit 0 and matching outputs or a named refusal, within "
    "the time limit."
)


def _damaged_files(
    request, tmp_path: Path, artifacts: dict, teacher: dict, counts: dict[str, int]
) -> None:
    tally = Tally(DAMAGED_GUARANTEE, DAMAGED_HOW, AREA)
    endings: dict[str, int] = {}
    for fmt in ("onnx", "tflite"):
        artifact = artifacts[fmt]
        for index, (case, mutated) in enumerate(_mutants(artifact["bytes"], counts[fmt], 1)):
            folder = tmp_path / f"{fmt}{index}"
            bundle = _bundle(folder, artifact, fmt, mutated)
            why, record = _verify_run(bundle, artifact["name"], MUTANT_TIMEOUT_S)
            if why is None:
                tally.held(f"{fmt} {case}")
                ending = f"{fmt} {record['status']}" if record else fmt
                endings[ending] = endings.get(ending, 0) + 1
            else:
                tally.broke(f"{fmt} {case}", why)
            shutil.rmtree(folder, ignore_errors=True)
    for index, (case, mutated) in enumerate(_mutants(teacher["bytes"], counts["teacher"], 7)):
        path = tmp_path / f"teacher{index}" / "teacher.onnx"
        path.parent.mkdir()
        path.write_bytes(mutated)
        started = time.monotonic()
        why, what = _load_teacher(path, teacher["data"])
        if why is None and time.monotonic() - started > MUTANT_TIMEOUT_S + 30:
            why = "took past the time limit"
        if why is None:
            tally.held(f"teacher {case}")
            ending = "teacher loaded" if what == "loaded" else "teacher refused"
            endings[ending] = endings.get(ending, 0) + 1
        else:
            tally.broke(f"teacher {case}", why)
    print("endings:", endings)
    tally.report(request.node.nodeid)


def test_damaged_model_files_end_as_records(
    request, tmp_path: Path, artifacts, teacher, monkeypatch
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, str(MUTANT_TIMEOUT_S))
    _damaged_files(request, tmp_path, artifacts, teacher, {"onnx": 18, "tflite": 14, "teacher": 16})


@pytest.mark.slow
def test_damaged_model_files_end_as_records_full(
    request, tmp_path: Path, artifacts, teacher, monkeypatch
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, str(MUTANT_TIMEOUT_S))
    _damaged_files(request, tmp_path, artifacts, teacher, {"onnx": 80, "tflite": 70, "teacher": 70})


# --- external data leaving the model's folder -------------------------------------------------


class _FifoWatch:
    """A FIFO that would block whoever opens it for reading; a thread notices a reader (a
    non-blocking open for writing succeeds only while one has it open) and lets it go."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.opened = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                descriptor = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                time.sleep(0.002)
                continue
            self.opened = True
            os.close(descriptor)  # the reader sees end of file and goes on

    @contextlib.contextmanager
    def watching(self) -> Iterator[_FifoWatch]:
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def _external_tensor(name: str, location: str):
    """A float tensor of 4 values whose bytes are said to lie in `location` (nothing written)."""
    import onnx

    tensor = onnx.TensorProto(name=name, data_type=onnx.TensorProto.FLOAT, dims=[4])
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def _all_initializers_outside(model, location: str) -> None:
    for tensor in model.graph.initializer:
        size = len(tensor.raw_data) or 4 * len(tensor.float_data)
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        tensor.data_location = 1  # EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", str(size))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value


def _in_sparse_initializer(model, location: str) -> None:
    import onnx

    sparse = onnx.SparseTensorProto(dims=[8])
    sparse.values.CopyFrom(_external_tensor("sparse_values", location))
    sparse.indices.CopyFrom(onnx.helper.make_tensor("sparse_indices", 7, [4], [0, 2, 4, 6]))
    model.graph.sparse_initializer.append(sparse)


def _in_constant_node(model, location: str) -> None:
    import onnx

    value = _external_tensor("constant_value", location)
    model.graph.node.append(onnx.helper.make_node("Constant", [], ["unused_c"], value=value))


def _in_if_subgraph(model, location: str) -> None:
    import onnx

    out = onnx.helper.make_tensor_value_info("branch_out", onnx.TensorProto.FLOAT, [4])
    branch = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["branch_w"], ["branch_out"])],
        "branch",
        [],
        [out],
        initializer=[_external_tensor("branch_w", location)],
    )
    condition = onnx.helper.make_tensor("cond", onnx.TensorProto.BOOL, [], [True])
    model.graph.initializer.append(condition)
    model.graph.node.append(
        onnx.helper.make_node("If", ["cond"], ["unused_if"], then_branch=branch, else_branch=branch)
    )


def _in_local_function(model, location: str) -> None:
    import onnx

    value = _external_tensor("function_value", location)
    function = onnx.helper.make_function(
        "hostile.local",
        "Outside",
        [],
        ["y"],
        [onnx.helper.make_node("Constant", [], ["y"], value=value)],
        [onnx.helper.make_opsetid("", 18)],
    )
    model.functions.append(function)


PLACES: dict[str, Callable] = {
    "initializers": _all_initializers_outside,
    "sparse initializer": _in_sparse_initializer,
    "Constant node": _in_constant_node,
    "If subgraph": _in_if_subgraph,
    "local function": _in_local_function,
}


def _hostile_layout(root: Path) -> tuple[Path, _FifoWatch]:
    """root/model/ (where the hostile files go) beside root/outside/ (a FIFO and a secret),
    with links inside model/ that lead outside."""
    (root / "model").mkdir(parents=True)
    (root / "outside").mkdir()
    fifo = _FifoWatch(root / "outside" / "fifo")
    (root / "outside" / "secret.bin").write_bytes(bytes(4096))
    os.symlink(root / "outside" / "fifo", root / "model" / "weights.bin")
    os.symlink(root / "outside", root / "model" / "data")
    return root / "model", fifo


def _locations(root: Path) -> dict[str, str]:
    fifo = str(root / "outside" / "fifo")
    return {
        "absolute path to a FIFO outside": fifo,
        "'..' to a FIFO outside": "../outside/fifo",
        "'..' after a folder": "sub/../../outside/fifo",
        "a link in the folder to a FIFO outside": "weights.bin",
        "through a linked folder": "data/fifo",
        "/proc": "/proc/self/environ",
        "a device": "/dev/zero",
        "backslashes": "..\\outside\\secret.bin",
        "the folder itself": ".",
        "empty": "",
    }


def _hostile_models(teacher: dict, model_folder: Path) -> Iterator[tuple[str, Path, str]]:
    """(case, file, location): the teacher with every initializer's data at each hostile
    location, and with one external tensor in each other place a tensor can sit."""
    import onnx

    root = model_folder.parent
    cases = [("initializers", label, location) for label, location in _locations(root).items()]
    cases += [
        (place, "'..'", "../outside/secret.bin") for place in PLACES if place != "initializers"
    ]
    for index, (place, label, location) in enumerate(cases):
        model = onnx.load_from_string(teacher["bytes"])
        PLACES[place](model, location)
        path = model_folder / f"hostile{index}.onnx"
        path.write_bytes(model.SerializeToString())  # not onnx.save: it would write the data
        yield f"{place}, {label}", path, location


def _refusal_names_it(message: str, path: Path, location: str) -> str | None:
    if str(path) not in message or repr(location) not in message:
        return f"the refusal does not name the file and {location!r}: {message[:300]}"
    return None


EXTERNAL_GUARANTEE = (
    "An ONNX file whose external data is absolute, climbs with '..', or resolves through links "
    "outside the model's folder is refused naming the file and the location (exit 2) before "
    "any of that data is opened, wherever the tensor sits (initializers, sparse initializers, "
    "Constant nodes, subgraphs, local functions)."
)
EXTERNAL_HOW = (
    "The torch-exported ONNX teacher rewritten with hostile locations (a FIFO outside that "
    "blocks whoever opens it, watched by a thread; /proc, /dev, links, '..') opened as a "
    "teacher, by `bench` and by `bundle verify --run`; held when refused naming file and "
    "location and nothing outside was opened."
)


def test_external_data_outside_the_model_folder_is_refused_before_it_is_opened(
    request, tmp_path: Path, teacher, artifacts
) -> None:
    tally = Tally(EXTERNAL_GUARANTEE, EXTERNAL_HOW, AREA)
    model_folder, fifo = _hostile_layout(tmp_path)
    hostile = list(_hostile_models(teacher, model_folder))
    with fifo.watching():
        for case, path, location in hostile:
            why, message = _load_teacher(path, teacher["data"])
            why = why or _refusal_names_it(message, path, location)
            _count(tally, f"teacher: {case}", why, fifo)
        for case, path, location in hostile[:4]:
            result = invoke("bench", str(path), "--runs", "1", "--warmup", "1")
            why = f"exit {result.returncode}" if result.returncode != 2 else None
            why = why or ("traceback" if "Traceback" in result.stderr else None)
            why = why or _refusal_names_it(" ".join(result.stderr.split()), path, location)
            _count(tally, f"bench: {case}", why, fifo)
        leaving = [case for case in hostile if case[2].startswith(("/", ".."))]
        for index, (case, path, location) in enumerate(leaving[:4]):
            artifact = {**artifacts["onnx"], "name": "model.fp32.onnx"}
            bundle = _bundle(tmp_path / f"bundle{index}", artifact, "onnx", path.read_bytes())
            why, record = _verify_run(bundle, artifact["name"], MUTANT_TIMEOUT_S)
            if why is None and (record is None or record["status"] != "fails"):
                why = f"status {record and record['status']}"
            if why is None and repr(location) not in record["detail"]:
                why = f"the record does not name {location!r}: {record['detail']}"
            _count(tally, f"bundle verify --run: {case}", why, fifo)
    tally.report(request.node.nodeid)


def _count(tally: Tally, case: str, why: str | None, fifo: _FifoWatch) -> None:
    if why is None and fifo.opened:
        why = "the FIFO outside the model's folder was opened"
    fifo.opened = False
    if why is None:
        tally.held(case)
    else:
        tally.broke(case, why)


def test_external_data_inside_the_folder_still_loads(tmp_path: Path, teacher) -> None:
    """The check refuses only what leaves the folder: the same teacher saved with its weights
    in weights/teacher.bin beside it loads and gives the intact file's logits."""
    import onnx

    model = onnx.load_from_string(teacher["bytes"])
    path = tmp_path / "teacher.onnx"
    (tmp_path / "weights").mkdir()
    onnx.save(
        model, path, save_as_external_data=True, location="weights/teacher.bin", size_threshold=256
    )  # fmt: skip  (small shape constants stay inline)
    assert list(external_locations(onnx.load(str(path), load_external_data=False)))
    task = load_task(data=teacher["data"], teacher=str(path))
    ready = prepare_teacher(task.recipe, task.data, task.teacher_names)
    intact = load_task(data=teacher["data"], teacher=str(teacher["path"]))
    reference = prepare_teacher(intact.recipe, intact.data, intact.teacher_names)
    batch = torch.from_numpy(np.random.default_rng(0).random((5, *TEACHER_SHAPE), np.float32))
    torch.testing.assert_close(ready.model(batch), reference.model(batch))


# --- a runtime that never finishes, or dies ---------------------------------------------------


RUNAWAY_GUARANTEE = (
    "A model file on which the runtime never finishes is stopped at the time limit "
    "($EDGEDISTILL_MODEL_TIMEOUT_S) and reported as timed out, naming the file; the toolkit "
    "goes on."
)
RUNAWAY_HOW = (
    "A valid ONNX Loop of 2**62 iterations, as a bundle artifact (`bundle verify --run`) and as "
    "a teacher, with a 3 s limit; held when it ended within the limit plus start-up with a "
    "'timed out' record naming it."
)


def test_a_model_that_never_finishes_is_stopped_at_the_time_limit(
    request, tmp_path: Path, artifacts, teacher, monkeypatch
) -> None:
    tally = Tally(RUNAWAY_GUARANTEE, RUNAWAY_HOW, AREA)
    runaway = runaway_onnx(tmp_path / "runaway.onnx", SHAPE)
    artifact = artifacts["onnx"]
    bundle = _bundle(tmp_path / "as-artifact", artifact, "onnx", runaway.read_bytes())
    why, record = _verify_run(bundle, artifact["name"], RUNAWAY_TIMEOUT_S)
    if why is None and (record is None or "timed out after 3 s" not in record["detail"]):
        why = f"not reported as timed out: {record}"
    tally.held("bundle artifact") if why is None else tally.broke("bundle artifact", why)

    monkeypatch.setenv(TIMEOUT_ENV, str(RUNAWAY_TIMEOUT_S))
    as_teacher = runaway_onnx(tmp_path / "teacher.onnx", TEACHER_SHAPE)
    started = time.monotonic()
    why, message = _load_teacher(as_teacher, teacher["data"])
    if why is None and "timed out after 3 s" not in message:
        why = f"not reported as timed out: {message}"
    if why is None and time.monotonic() - started > RUNAWAY_TIMEOUT_S + 30:
        why = f"took {time.monotonic() - started:.0f} s"
    tally.held("teacher") if why is None else tally.broke("teacher", why)
    tally.report(request.node.nodeid)


SEGFAULT_CHILD = """
import ctypes
ctypes.string_at(0)  # reads address 0: SIGSEGV, as a runtime crashing on a damaged file does
"""


def test_a_child_that_segfaults_is_reported_with_its_signal(tmp_path: Path, monkeypatch) -> None:
    """The child machinery itself: a real child process that dies of SIGSEGV (a null read, what
    a runtime crashing on a damaged file does) gives 'crashed with signal 11', and the caller
    goes on."""
    (tmp_path / "segfaulting_child.py").write_text(SEGFAULT_CHILD)
    monkeypatch.chdir(tmp_path)  # `python -m` finds modules in the working directory
    outcome = run_child("segfaulting_child", [], 30, tmp_path)
    assert outcome.result is None
    assert outcome.failure == "crashed with signal 11 (SIGSEGV)"
