"""Untrusted weights: pickles that carry a payload (raw, inside torch.save's zip and legacy
formats, behind a .safetensors name) and safetensors files with hostile headers, handed to
every command that reads weights. Each is refused with exit 2 naming the file, no traceback,
nothing written at --out, and the payload never runs: unpickling any of them would create a
marker file, and the marker must never appear."""

from __future__ import annotations

import io
import json
import os
import pickle
import shlex
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgedistill.students import build_student, parse_student
from edgedistill.students.checkpoint import save_weights
from tests.byo_support import image_folder
from tests.conftest import invoke, tiny_fit_args
from tests.reliability.record import Tally

AREA = "weights"
GUARANTEE = (
    "A weights file that could run code when read (a pickle with a payload, in any torch.save "
    "form or behind any file name) or a safetensors file with a hostile header is refused "
    "with exit 2 naming the file, and its payload never runs."
)
HOW = (
    "Payload pickles (protocols 2-5, calling open/exec/eval/os.system to write a marker file) "
    "and malformed safetensors headers are built in the test and given to fit, distill, export "
    "and hf teachers; a case holds when the command exits 2 without a traceback, names the file, "
    "writes nothing at --out, and the marker file never appears."
)
STUDENT = "mbv2:d=1,r=8,w=0.25"
TEACHER = """
from torch import nn


def build(num_classes=3, in_channels=3):
    return nn.Sequential(
        nn.Conv2d(in_channels, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, num_classes),
    )
"""


# --- payloads: what unpickling would call, each writing the marker ---------------------------


def _calls(marker: Path) -> dict[str, tuple[Callable, tuple]]:
    quoted = repr(str(marker))
    return {
        "open": (open, (str(marker), "w")),
        "exec": (exec, (f"open({quoted}, 'w').close()",)),
        "eval": (eval, (f"open({quoted}, 'w').close()",)),
        "os.system": (os.system, (f"touch {shlex.quote(str(marker))}",)),
    }


class _Payload:
    """Pickles as a call of `how` (a key of _calls): unpickling it writes the marker."""

    def __init__(self, how: str, marker: Path) -> None:
        self.how, self.marker = how, marker

    def __reduce__(self):
        return _calls(self.marker)[self.how]


def _state(payload: object) -> dict:
    """A state dict a teacher would accept, with the payload beside a genuine tensor."""
    return {"0.weight": torch.zeros(4, 3, 3, 3), "extra": payload}


def _torch_bytes(document: object, protocol: int, zip_format: bool = True) -> bytes:
    buffer = io.BytesIO()
    torch.save(
        document, buffer, pickle_protocol=protocol, _use_new_zipfile_serialization=zip_format
    )
    return buffer.getvalue()


def _replace_data_pkl(archive: bytes, data_pkl: bytes) -> bytes:
    """torch.save's zip with its data.pkl swapped for `data_pkl` (other records kept)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            body = data_pkl if info.filename.endswith("/data.pkl") else source.read(info)
            target.writestr(info.filename, body)
    return out.getvalue()


def _pickled(how: str, protocol: int) -> Callable[[Path], bytes]:
    return lambda marker: pickle.dumps(_state(_Payload(how, marker)), protocol=protocol)


def _torch_zip(how: str, protocol: int) -> Callable[[Path], bytes]:
    return lambda marker: _torch_bytes(_state(_Payload(how, marker)), protocol)


def _torch_legacy(how: str, protocol: int) -> Callable[[Path], bytes]:
    return lambda marker: _torch_bytes(_state(_Payload(how, marker)), protocol, zip_format=False)


def _zip_referencing(protocol: int) -> Callable[[Path], bytes]:
    """A genuine state dict's zip whose data.pkl only names a dangerous callable (a GLOBAL
    for os.system, never called)."""

    def build(marker: Path) -> bytes:
        genuine = _torch_bytes({"0.weight": torch.zeros(2)}, protocol)
        return _replace_data_pkl(genuine, pickle.dumps({"hook": os.system}, protocol=protocol))

    return build


def _zip_calling(how: str, protocol: int) -> Callable[[Path], bytes]:
    """A genuine state dict's zip whose data.pkl calls the payload."""

    def build(marker: Path) -> bytes:
        genuine = _torch_bytes({"0.weight": torch.zeros(2)}, protocol)
        payload = pickle.dumps({"hook": _Payload(how, marker)}, protocol=protocol)
        return _replace_data_pkl(genuine, payload)

    return build


def _safetensors(header: object, data: bytes = b"", length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    size = len(raw) if length is None else length
    return struct.pack("<Q", size) + raw + data


def _tensor(dtype: str, shape: list[int], start: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [start, end]}


# name -> (file suffix, bytes for a given marker path)
PICKLED: dict[str, tuple[str, Callable[[Path], bytes]]] = {
    **{
        f"raw-pickle-p{p}-{how}": (".pt", _pickled(how, p))
        for p in (2, 3, 4, 5)
        for how in ("open", "exec", "eval", "os.system")
    },
    **{f"torch-zip-p{p}-open": (".pth", _torch_zip("open", p)) for p in (2, 3, 4, 5)},
    "torch-zip-os.system": (".bin", _torch_zip("os.system", 2)),
    **{f"torch-legacy-p{p}-exec": (".pt", _torch_legacy("exec", p)) for p in (2, 4)},
    "torch-legacy-os.system": (".bin", _torch_legacy("os.system", 2)),
    "zip-global-os.system-referenced": (".pt", _zip_referencing(2)),
    "zip-data.pkl-calls-eval": (".pth", _zip_calling("eval", 4)),
    "pickle-named-safetensors": (".safetensors", _pickled("open", 4)),
    "torch-zip-named-safetensors": (".safetensors", _torch_zip("exec", 2)),
}
F32 = b"\x00" * 16
HOSTILE_SAFETENSORS: dict[str, bytes] = {
    "header-length-2^64-1": _safetensors({}, length=2**64 - 1),
    "header-length-past-the-file": _safetensors({"w": _tensor("F32", [4], 0, 16)}, F32, 10**6),
    "header-length-1GiB": _safetensors(b"{", length=1 << 30),
    "header-not-json": _safetensors(b"\x80\x04\x95 not json at all", F32),
    "header-a-list": _safetensors([1, 2, 3], F32),
    "offsets-past-the-data": _safetensors({"0.weight": _tensor("F32", [4], 0, 4096)}, F32),
    "offsets-reversed": _safetensors({"0.weight": _tensor("F32", [4], 16, 0)}, F32),
    "offsets-overlapping": _safetensors(
        {"0.weight": _tensor("F32", [4], 0, 16), "0.bias": _tensor("F32", [2], 8, 16)}, F32
    ),
    "offsets-with-a-gap": _safetensors({"0.weight": _tensor("F32", [2], 8, 16)}, F32),
    "dtype-unknown": _safetensors({"0.weight": _tensor("PICKLE", [4], 0, 16)}, F32),
    "dtype-size-mismatch": _safetensors({"0.weight": _tensor("F64", [4], 0, 16)}, F32),
    "shape-negative": _safetensors({"0.weight": _tensor("F32", [-4], 0, 16)}, F32),
    "shape-overflows": _safetensors({"0.weight": _tensor("F32", [2**62, 2**62], 0, 16)}, F32),
    "metadata-not-strings": _safetensors({"__metadata__": {"a": {"b": 1}}}, b""),
    "truncated-data": _safetensors({"0.weight": _tensor("F32", [4], 0, 16)}, F32[:7]),
    "payload-after-the-tensors": _safetensors(
        {"0.weight": _tensor("F32", [4], 0, 16)}, F32 + pickle.dumps(os.system)
    ),
}


def _all_variants() -> dict[str, tuple[str, Callable[[Path], bytes]]]:
    variants = dict(PICKLED)
    for name, data in HOSTILE_SAFETENSORS.items():
        variants[f"safetensors-{name}"] = (".safetensors", lambda marker, data=data: data)
    return variants


VARIANTS = _all_variants()


def test_the_payloads_do_run_when_unpickled(tmp_path: Path) -> None:
    """The payloads are real: plain pickle.loads of each kind writes its marker."""
    for how in ("open", "exec", "eval", "os.system"):
        marker = tmp_path / f"ran-{how}"
        result = pickle.loads(pickle.dumps(_Payload(how, marker)))
        if hasattr(result, "close"):
            result.close()
        assert marker.exists(), how


# --- the world the commands run in --------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny image folder (3 classes, 3x8x8), a teacher file, and a checkpoint folder."""
    root = tmp_path_factory.mktemp("weights")
    data = image_folder(root / "images", classes=3, per_class=6, size=(8, 8))
    teacher = root / "teacher.py"
    teacher.write_text(TEACHER, "utf-8")
    checkpoint = root / "checkpoint"
    checkpoint.mkdir()
    model = build_student(parse_student(STUDENT), (3, 8, 8), 3)
    save_weights(checkpoint, model, {"spec": STUDENT, "input_shape": [3, 8, 8], "num_classes": 3})
    texts = root / "texts.txt"
    texts.write_text("".join(f"the {w} cat sat on the mat\n" for w in WORDS * 3), "utf-8")
    return {"root": root, "data": f"imagefolder:{data}", "teacher": f"{teacher}:build",
            "checkpoint": checkpoint, "texts": texts, "hf": _hf_encoder(root / "hf")}  # fmt: skip


WORDS = ["red", "blue", "green", "big", "small", "fast", "slow", "happy"]


def _hf_encoder(folder: Path) -> Path:
    """A tiny BERT encoder's folder as transformers saves one, its config written here (the
    weights file is what each case replaces): config.json, vocab.txt, tokenizer_config.json."""
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on",
                  "mat", *WORDS]  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(vocabulary) + "\n", "utf-8")
    tokenizer = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 32}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer), "utf-8")
    config = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": len(vocabulary),
              "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 32, "max_position_embeddings": 32, "type_vocab_size": 2,
              "pad_token_id": 0}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config), "utf-8")
    (folder / "model.safetensors").write_bytes(_safetensors({}))
    return folder


def _teacher_flags(world: dict, weights: Path) -> list[str]:
    return ["--teacher", world["teacher"], "--teacher-weights", str(weights), "--data",
            world["data"]]  # fmt: skip


def _fit(world: dict, weights: Path, out: Path) -> list[str]:
    return ["fit", "--device", "host-cpu", "--budget", "2ms", "--epochs", "1", "--out",
            str(out), *_teacher_flags(world, weights)]  # fmt: skip


def _distill(world: dict, weights: Path, out: Path) -> list[str]:
    return ["distill", "--student", STUDENT, "--epochs", "1", "--out", str(out),
            *_teacher_flags(world, weights)]  # fmt: skip


def _export_module(world: dict, weights: Path, out: Path) -> list[str]:
    return ["export", world["teacher"], "--weights", str(weights), "--input-shape", "3,8,8",
            "--formats", "onnx", "--out", str(out)]  # fmt: skip


def _placed(folder: Path, name: str, weights: Path) -> Path:
    """`folder` (a copy of a genuine one) with `name` replaced by the hostile file's bytes."""
    (folder / name).write_bytes(weights.read_bytes())
    return folder / name


def _checkpoint_copy(world: dict, weights: Path) -> tuple[Path, Path]:
    folder = weights.parent / "checkpoint"
    shutil.copytree(world["checkpoint"], folder)
    return folder, _placed(folder, "student.safetensors", weights)


def _export_checkpoint(world: dict, weights: Path, out: Path) -> tuple[list[str], Path]:
    folder, named = _checkpoint_copy(world, weights)
    return ["export", str(folder), "--formats", "onnx", "--out", str(out)], named


def _distill_from_earlier_run(world: dict, weights: Path, out: Path) -> tuple[list[str], Path]:
    folder, named = _checkpoint_copy(world, weights)
    args = ["distill", "--student", STUDENT, "--epochs", "1", "--out", str(out), "--data",
            world["data"], "--teacher", str(folder)]  # fmt: skip
    return args, named


def _hf_folder(world: dict, weights: Path, name: str) -> Path:
    folder = shutil.copytree(world["hf"], weights.parent / "hf")
    if name != "model.safetensors":
        (folder / "model.safetensors").unlink()
    return _placed(folder, name, weights)


def _fit_hf(name: str) -> Callable[[dict, Path, Path], tuple[list[str], Path]]:
    """`fit --teacher hf:DIR` whose weights file `name` is the hostile one."""

    def entry(world: dict, weights: Path, out: Path) -> tuple[list[str], Path]:
        named = _hf_folder(world, weights, name)
        args = ["fit", "--device", "host-cpu", "--budget", "2ms", "--epochs", "1", "--out",
                str(out), "--teacher", f"hf:{named.parent}", "--data",
                f"text:{world['texts']}"]  # fmt: skip
        return args, named

    return entry


# entry point -> (args, the file the message must name) for a hostile file and an --out
ENTRY_POINTS: dict[str, Callable[[dict, Path, Path], tuple[list[str], Path]]] = {
    "fit --teacher-weights": lambda w, f, o: (_fit(w, f, o), f),
    "distill --teacher-weights": lambda w, f, o: (_distill(w, f, o), f),
    "export FILE.py:FN --weights": lambda w, f, o: (_export_module(w, f, o), f),
    "export CHECKPOINT": _export_checkpoint,
    "distill --teacher EARLIER_RUN": _distill_from_earlier_run,
    "fit --teacher hf:DIR (pytorch_model.bin)": _fit_hf("pytorch_model.bin"),
    "fit --teacher hf:DIR (model.safetensors)": _fit_hf("model.safetensors"),
}


def _judge(tally: Tally, case: str, result, named: Path, marker: Path, out: Path) -> None:
    stderr = " ".join(result.stderr.split())
    if marker.exists():
        tally.broke(case, "the payload ran: the marker file was written")
    elif "Traceback" in result.stderr:
        tally.broke(case, "traceback: " + result.stderr.strip().splitlines()[-1][:200])
    elif result.returncode != 2:
        tally.broke(case, f"exit {result.returncode}, not 2: {stderr[-200:]}")
    elif str(named) not in stderr and str(named) not in result.stderr.replace("\n", ""):
        tally.broke(case, f"the message does not name {named}: {stderr[-200:]}")
    elif out.exists():
        tally.broke(case, f"{out} was written")
    else:
        tally.held(case)


def _try(tally: Tally, world: dict, entry: str, variant: str, tmp: Path) -> None:
    case_dir = tmp / f"{len(list(tmp.iterdir())):04d}"
    case_dir.mkdir()
    marker, out = case_dir / "marker", case_dir / "out"
    suffix, build = VARIANTS[variant]
    weights = case_dir / f"weights{suffix}"
    weights.write_bytes(build(marker))
    args, named = ENTRY_POINTS[entry](world, weights, out)
    _judge(tally, f"{entry} <- {variant}", invoke(*args), named, marker, out)


# CI: every variant through one entry point, two variants through each of the others.
CI_OTHERS = ("torch-zip-p2-open", "safetensors-offsets-overlapping")


def test_hostile_weights_are_refused_naming_the_file_and_never_run(world, tmp_path, request):
    tally = Tally(guarantee=GUARANTEE, how=HOW, area=AREA)
    for variant in VARIANTS:
        _try(tally, world, "export FILE.py:FN --weights", variant, tmp_path)
    for entry in ENTRY_POINTS:
        if entry != "export FILE.py:FN --weights":
            for variant in CI_OTHERS:
                _try(tally, world, entry, variant, tmp_path)
    tally.report(request.node.nodeid)


@pytest.mark.slow
def test_every_hostile_weights_file_through_every_entry_point(world, tmp_path, request):
    tally = Tally(guarantee=GUARANTEE, how=HOW, area=AREA)
    for entry in ENTRY_POINTS:
        for variant in VARIANTS:
            _try(tally, world, entry, variant, tmp_path)
    tally.report(request.node.nodeid)


# --- fuzzed safetensors headers ----------------------------------------------------------------

FUZZ_GUARANTEE = (
    "A safetensors file with any malformed header (dtype, shape, offsets, lengths) is refused "
    "with exit 2 naming the file, never a crash or a traceback."
)
FUZZ_HOW = (
    "hypothesis (derandomized) builds headers from hostile dtypes, shapes, offsets and declared "
    "lengths around one 16-byte buffer, given as --weights to export FILE.py:FN; a header "
    "that happens to be valid yet does not match the module is refused the same way."
)
_DTYPES = st.sampled_from(["F32", "F16", "BF16", "F64", "I8", "U8", "BOOL", "I64", "F8_E4M3",
                           "C64", "", "f32", "OBJECT"])  # fmt: skip
_INTS = st.one_of(st.integers(-4, 40), st.sampled_from([2**31, 2**32, 2**63 - 1, 2**64]))
_ENTRY = st.fixed_dictionaries(
    {
        "dtype": _DTYPES,
        "shape": st.lists(_INTS, max_size=4),
        "data_offsets": st.lists(_INTS, min_size=0, max_size=3),
    }  # fmt: skip
)
_HEADERS = st.dictionaries(st.sampled_from(["0.weight", "0.bias", "4.weight", "x"]), _ENTRY,
                           max_size=3)  # fmt: skip
_LENGTHS = st.one_of(st.none(), st.integers(0, 64), st.sampled_from([2**40, 2**64 - 1]))


def _fuzz(world: dict, tmp_path: Path, request, examples: int) -> None:
    tally = Tally(guarantee=FUZZ_GUARANTEE, how=FUZZ_HOW, area=AREA)

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(header=_HEADERS, length=_LENGTHS, data=st.sampled_from([b"", F32, F32 * 3]))
    def attempt(header: dict, length: int | None, data: bytes) -> None:
        case_dir = tmp_path / f"{tally.tried:04d}"
        case_dir.mkdir()
        weights, out = case_dir / "weights.safetensors", case_dir / "out"
        weights.write_bytes(_safetensors(header, data, length))
        case = f"header {json.dumps(header)[:120]} length {length} data {len(data)}"
        result = invoke(*_export_module(world, weights, out))
        _judge(tally, case, result, weights, case_dir / "marker", out)

    attempt()
    tally.report(request.node.nodeid)


def test_fuzzed_safetensors_headers_are_refused(world, tmp_path, request):
    _fuzz(world, tmp_path, request, examples=15)


@pytest.mark.slow
def test_many_fuzzed_safetensors_headers_are_refused(world, tmp_path, request):
    _fuzz(world, tmp_path, request, examples=400)


# --- fit --resume on a run whose checkpoint was replaced -----------------------------------

RESUME_STATE = Path("checkpoint") / "stages" / "0-student" / "train-state.safetensors"


@pytest.fixture(scope="module")
def interrupted_fit(tmp_path_factory, tiny_budget_ms) -> tuple[Path, tuple[str, ...]]:
    """(the staged folder of a fit killed with SIGKILL after its first epoch, its argv)."""
    from tests.test_fit_resume import _kill_after_first_epoch

    argv = tiny_fit_args(tiny_budget_ms)
    out = tmp_path_factory.mktemp("interrupted") / "run"
    _kill_after_first_epoch(out, argv)
    return out.parent / f".{out.name}.partial", argv


@pytest.mark.slow
def test_resume_refuses_a_replaced_checkpoint_and_never_runs_it(interrupted_fit, tmp_path, request):
    staged, argv = interrupted_fit
    tally = Tally(guarantee=GUARANTEE, how=HOW, area=AREA)
    for variant, (_suffix, build) in VARIANTS.items():
        case_dir = tmp_path / f"{tally.tried:04d}"
        shutil.copytree(staged, case_dir / staged.name)
        marker, out = case_dir / "marker", case_dir / "run"
        state = case_dir / staged.name / RESUME_STATE
        state.write_bytes(build(marker))
        result = invoke(*argv, "--out", str(out), "--resume")
        _judge(tally, f"fit --resume <- {variant}", result, state, marker, out)
    tally.report(request.node.nodeid)
