"""Malformed configuration: broken device profiles, task recipes, lab files and bundle manifests,
each given to the command a user would give it to, are refused with exit 2, a message naming the
file (and the field), no traceback, and nothing trained or written."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgedistill.bundle import write_manifest
from edgedistill.profiles import shipped_profile_names
from tests.conftest import TINY_RECIPE, invoke
from tests.lab_fixtures import running_sshd, tiny_onnx
from tests.reliability.config_mutations import Case, Kind, broken
from tests.reliability.record import Tally

REPO = Path(__file__).resolve().parents[2]
CI_EXAMPLES, SLOW_EXAMPLES = 30, 200
HOW = (
    "hypothesis mutates valid documents (shipped profiles, tests/data recipes, a lab file for "
    "a real sshd, a real bundle's manifest) in one way each and runs the command a user would; "
    "held: exit 2 (1 for a valid manifest whose files disagree), the file and the broken field "
    "named, no traceback{extra}"
)

# --- the four kinds of document and what their schemas say ------------------------------------


def _profiles() -> Kind:
    bases = {
        name: yaml.safe_load((REPO / "profiles" / f"{name}.yaml").read_text("utf-8"))
        for name in shipped_profile_names()
    }
    peaks = [("compute", "peak_ops_per_s", p) for p in ("fp32", "fp16", "int8")]
    numbers = [
        ("compute", "memory_bandwidth_gb_s"), ("compute", "cpu_cores"), ("compute", "ram_gb"),
        ("latency", "compute_efficiency"), ("latency", "memory_efficiency"),
        ("latency", "per_layer_overhead_us"), ("latency", "per_inference_overhead_us"),
        ("constraints", "input", "batch"), *peaks,
    ]  # fmt: skip
    return Kind(
        name="device profiles",
        syntax="yaml",
        bases=bases,
        required=[
            ("name",),
            ("description",),
            ("compute",),
            ("compute", "processor"),
            ("compute", "peak_ops_per_s"),
            ("compute", "memory_bandwidth_gb_s"),
            ("compute", "cpu_cores"),
            ("compute", "ram_gb"),
            ("compute", "source"),
            ("runtimes",),
            ("deploy",),
            ("deploy", "formats"),
            ("deploy", "precision"),
            ("lab",),
            ("lab", "transport"),
        ],  # fmt: skip
        mappings=[
            (),
            ("compute",),
            ("deploy",),
            ("lab",),
            ("latency",),
            ("constraints",),
            ("constraints", "input"),
            ("compute", "peak_ops_per_s"),
        ],  # fmt: skip
        numbers=numbers,
        strings=[
            ("name",),
            ("description",),
            ("compute", "processor"),
            ("compute", "source"),
            ("deploy", "precision"),
            ("lab", "transport"),
        ],  # fmt: skip
        lists=[("runtimes",), ("deploy", "formats"), ("constraints", "notes")],
        out_of_range={
            ("compute", "memory_bandwidth_gb_s"): [0, -1],
            ("compute", "cpu_cores"): [0, -3, 2.5],
            ("compute", "ram_gb"): [0, -8],
            **{path: [0, -1.0e12] for path in peaks},
            ("latency", "compute_efficiency"): [0, 1.5, -0.1],
            ("latency", "memory_efficiency"): [0, 2],
            ("latency", "per_layer_overhead_us"): [-1],
            ("constraints", "input", "batch"): [0, -1],
            ("name",): ["Host CPU", "-x", "a/b"],
            ("deploy", "precision"): ["int4", "FP32"],
            ("deploy", "formats"): [[], ["tflite"], ["onnx", "no-such-format"]],
            ("runtimes",): [[], ["no-such-runtime"]],
            ("lab", "transport"): ["telnet"],
            ("schema_version",): [2, 0],
        },
        huge_strings=[("name",), ("deploy", "precision"), ("lab", "transport")],
    )


def _recipes() -> Kind:
    bases = {
        path.name: yaml.safe_load(path.read_text("utf-8"))
        for path in (TINY_RECIPE, REPO / "tests" / "data" / "tiny_fortunes.yaml")
    }
    trains = [("teacher", "train"), ("distill", "train")]
    return Kind(
        name="task recipes",
        syntax="yaml",
        bases=bases,
        required=[
            ("name",),
            ("data",),
            ("data", "source"),
            ("input", "channels"),
            ("input", "height"),
            ("input", "width"),
            ("preprocessing", "description"),
            ("preprocessing", "mean"),
            ("teacher", "train"),
            ("distill", "train"),
            *[(*t, "epochs") for t in trains],
            *[(*t, "lr") for t in trains],
        ],  # fmt: skip
        mappings=[
            (),
            ("data",),
            ("data", "split"),
            ("input",),
            ("teacher",),
            ("distill",),
            *trains,
            ("distill", "qat"),
        ],  # fmt: skip
        numbers=[
            ("data", "split", "train"),
            ("data", "split", "val"),
            ("data", "split", "seed"),
            ("input", "channels"),
            ("input", "height"),
            ("input", "length"),
            *[(*t, "epochs") for t in trains],
            *[(*t, "lr") for t in trains],
            *[(*t, "batch_size") for t in trains],
            ("distill", "qat", "epochs"),
            ("preprocessing", "scale"),
        ],  # fmt: skip
        strings=[("name",), ("data", "source"), ("task_type",), ("teacher", "arch")],
        lists=[("labels",), ("preprocessing", "mean"), ("teacher", "widths")],
        out_of_range={
            ("data", "split", "train"): [0, 1, 1.5, -0.1, 0.9],
            ("data", "split", "val"): [0, 1],
            ("input", "channels"): [0, -1],
            ("input", "height"): [2, 0],
            ("input", "length"): [1, 100_000],
            **{(*t, "epochs"): [0, -2, 1.5] for t in trains},
            **{(*t, "lr"): [0, -0.01] for t in trains},
            **{(*t, "optimizer"): ["rmsprop"] for t in trains},
            ("distill", "qat", "epochs"): [-1],
            ("task_type",): ["clustering"],
            ("teacher", "arch"): ["vgg"],
            ("teacher", "widths"): [[]],
            ("labels",): [[], ["only-one"]],
            ("schema_version",): [2, 0],
        },
        huge_strings=[("task_type",), ("teacher", "arch")],
    )


def _lab(sshd) -> Kind:
    local = {"name": "here", "profile": "host-cpu", "transport": "local"}
    bases = {
        "one ssh device": {"devices": [sshd.device()]},
        "ssh and local": {"schema_version": 1, "devices": [sshd.device("board"), local]},
    }
    device = ("devices", 0)
    numbers = ["port", "connect_timeout_s", "step_timeout_s", "cooldown_s", "retries"]
    return Kind(
        name="lab files",
        syntax="yaml",
        bases=bases,
        required=[("devices",), *[(*device, f) for f in ("name", "transport", "host", "user")]],
        mappings=[(), device],
        numbers=[(*device, f) for f in [*numbers, "keepalive_s"]],
        strings=[(*device, f) for f in ("name", "profile", "host", "user", "workdir")],
        lists=[("devices",)],
        out_of_range={
            (*device, "port"): [0, 70000, -22],
            (*device, "connect_timeout_s"): [0, 601, -1],
            (*device, "step_timeout_s"): [0],
            (*device, "cooldown_s"): [-1, 4000],
            (*device, "retries"): [-1, 11, 1.5],
            (*device, "keepalive_s"): [0, 601],
            (*device, "name"): ["bad name!", "-x", ""],
            (*device, "workdir"): ["relative/dir", "/tmp\n/x"],
            (*device, "host"): ["-oProxyCommand=touch /tmp/owned", "a b", "user@host"],
            (*device, "user"): ["bad user", "-x"],
            (*device, "env"): [{"1BAD": "x"}, {"A B": "x"}],
            (*device, "transport"): ["telnet", "SSH"],
            ("devices",): [[]],
            ("schema_version",): [2],
        },
        huge_strings=[(*device, "name"), (*device, "transport")],
    )


def _other_hex(manifest: dict, draw) -> str:
    return draw(st.from_regex(r"\A[0-9a-f]{64}\Z"))


def _manifests(manifest: dict) -> Kind:
    def changed_hash(tree, draw):
        tree["files"][0]["sha256"] = _other_hex(tree, draw)
        return tree, tree["files"][0]["path"]

    def changed_size(tree, draw):
        entry = tree["files"][0]
        entry["bytes"] = draw(st.integers(0, 10**9).filter(lambda n: n != entry["bytes"]))
        return tree, entry["path"]

    def unlisted(tree, draw):
        entry = tree["files"].pop(draw(st.integers(0, len(tree["files"]) - 1)))
        return tree, entry["path"]

    def absent(tree, draw):
        name = draw(st.from_regex(r"\A[a-z]{1,12}\.bin\Z"))
        tree["files"].append({"path": name, "sha256": "0" * 64, "bytes": 0})
        return tree, name

    file0 = ("files", 0)
    return Kind(
        name="bundle manifests",
        syntax="json",
        bases={"bundle": manifest},
        required=[
            *[(f,) for f in ("created_utc", "tool", "device", "budget_ms", "precision", "input")],
            *[(f,) for f in ("preprocessing", "labels", "artifacts", "measured", "files")],
            *[(*file0, f) for f in ("path", "sha256", "bytes")],
        ],
        mappings=[(), file0],  # tool, input, measured... are open sections
        numbers=[("budget_ms",), (*file0, "bytes")],
        strings=[("device",), ("created_utc",), ("precision",), (*file0, "path")],
        lists=[("labels",), ("artifacts",), ("files",)],
        out_of_range={
            (*file0, "bytes"): [-1],
            (*file0, "sha256"): ["xyz", "A" * 64, "0" * 63],
            (*file0, "path"): ["../outside", "/etc/passwd", "a/../b", "a\\b", ""],
            ("schema_version",): [3, 0],
            ("artifacts",): [[1], ["model.onnx"]],
        },
        huge_strings=[(*file0, "sha256")],
        semantic=[
            ("a file's sha256 changed", changed_hash),
            ("a file's size changed", changed_size),
            ("a file left out of the list", unlisted),
            ("a file listed that is not there", absent),
        ],
    )


# --- the commands each document is given to ----------------------------------------------------

Command = Callable[[Path, Path], list[str]]  # (document, scratch dir) -> argv


def _profile_commands(base: str) -> list[Command]:
    commands: list[Command] = [
        lambda doc, _: ["profiles", "validate", str(doc)],
        lambda doc, _: ["profiles", "show", str(doc)],
    ]
    if base != "host-cpu":  # a valid host profile would calibrate this host first (minutes)
        commands.append(lambda doc, _: ["search", "--device", str(doc), "--budget", "1ms"])
        commands.append(lambda doc, _: ["calibrate", "--device", str(doc), "--samples", "4"])
    return commands


RECIPE_COMMANDS: list[Command] = [
    lambda doc, _: ["search", "--device", "jetson-orin-nano", "--budget", "1ms", "--task",
                    str(doc)],
    lambda doc, out: ["distill", "--task", str(doc), "--student", "mbv2:d=1,r=16,w=0.5", "--out",
                      str(out / "run")],
    lambda doc, out: ["fit", "--device", "host-cpu", "--budget", "1ms", "--task", str(doc),
                      "--out", str(out / "run")],
]  # fmt: skip
LAB_COMMANDS: list[Command] = [
    lambda doc, _: ["lab", "check", str(doc)],
    lambda doc, out: ["fit", "--device", "host-cpu", "--budget", "1ms", "--task",
                      str(TINY_RECIPE), "--lab", str(doc), "--target", "board", "--out",
                      str(out / "run")],
]  # fmt: skip


# --- the judge ---------------------------------------------------------------------------------


def judge(tally: Tally, case: Case, argv: list[str], named_file: str, scratch: Path) -> None:
    result = invoke(*argv)
    said = result.stdout + result.stderr
    label = f"{case.label} via {' '.join(argv[:2])}"
    problems = []
    if result.returncode != case.exit_code:
        problems.append(f"exit {result.returncode}, not {case.exit_code}")
    if "Traceback" in result.stderr:
        problems.append("a traceback: " + result.stderr.strip().splitlines()[-1][:200])
    if named_file not in said:
        problems.append(f"the message does not name {named_file}")
    if case.field is not None and case.field not in said:
        problems.append(f"the message does not name {case.field!r}")
    run = scratch / "run"
    if run.exists() and any(run.iterdir()):
        problems.append(f"{run} was written to: {sorted(p.name for p in run.iterdir())[:5]}")
    if problems:
        tally.broke(label, "; ".join(problems) + f" (said: {said.strip()[-300:]!r})")
    else:
        tally.held(label)


def _scratch(root: Path, n: list[int]) -> Path:
    n[0] += 1
    folder = root / f"case{n[0]}"
    folder.mkdir()
    return folder


def check_documents(
    kind: Kind,
    examples: int,
    root: Path,
    commands: Callable[[str], list[Command]],
    place: Callable[[Path], Path],
) -> Tally:
    """Give `examples` broken documents of `kind` to one of its commands each; count them."""
    extra = "; the training commands' --out stays empty" if kind.name == "task recipes" else ""
    guarantee = {
        "device profiles": "A broken device profile (--device FILE) is refused with exit 2, "
        "naming the file and the field, without a traceback.",
        "task recipes": "A broken task recipe (--task FILE) is refused with exit 2, naming the "
        "file and the field, before anything is trained or written.",
        "lab files": "A broken lab file (--lab FILE, lab check FILE) is refused with exit 2, "
        "naming the file and the field, before any device is contacted.",
        "bundle manifests": "A broken manifest.json makes bundle verify exit 2 naming the file "
        "and field (exit 1 naming the bundle file when it parses but disagrees with the files).",
    }[kind.name]
    tally = Tally(guarantee=guarantee, how=HOW.format(extra=extra), area="configuration")
    counter = [0]

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        case = data.draw(broken(kind))
        scratch = _scratch(root, counter)
        base = case.label.split(":", 1)[0]
        command = data.draw(st.sampled_from(commands(base)))
        document = place(scratch)
        document.write_bytes(case.data)
        named = str(document) if case.exit_code == 2 else str(case.field)
        judge(tally, case, command(document, scratch), named, scratch)

    one()
    return tally


# --- fixtures: a real sshd for lab files, a real bundle for manifests ---------------------------


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    yield from running_sshd(tmp_path_factory)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A bundle as `fit` writes one: a real ONNX model (tests/lab_fixtures.tiny_onnx), labels,
    manifest."""
    folder = tmp_path_factory.mktemp("bundle") / "bundle"
    folder.mkdir()
    tiny_onnx(folder / "model.fp32.onnx")
    (folder / "labels.txt").write_text("".join(f"{k}\n" for k in range(10)), "utf-8")
    write_manifest(
        folder,
        device="host-cpu",
        budget_ms=2.0,
        precision="fp32",
        input={"name": "input", "shape": [1, 1, 8, 8], "dtype": "float32"},
        preprocessing={"resize": [32, 32], "mean": [0.3], "std": [0.35]},
        labels=[str(k) for k in range(10)],
        artifacts=[{"format": "onnx", "precision": "fp32", "path": "model.fp32.onnx"}],
        measured={"p50": 0.1, "p90": 0.12, "measured_on": "host"},
    )
    assert invoke("bundle", "verify", str(folder)).returncode == 0
    return folder


def _manifest_tally(bundle: Path, tmp_path: Path, examples: int) -> Tally:
    manifest = json.loads((bundle / "manifest.json").read_text("utf-8"))

    def place(scratch: Path) -> Path:  # a copy of the bundle, its manifest.json to break
        shutil.copytree(bundle, scratch / "bundle")
        return scratch / "bundle" / "manifest.json"

    def verify(doc: Path, _: Path) -> list[str]:
        return ["bundle", "verify", str(doc.parent)]

    return check_documents(_manifests(manifest), examples, tmp_path, lambda _: [verify], place)


# --- the tests: CI variants, and the full counts marked slow ------------------------------------


def _profile_tally(tmp_path: Path, examples: int) -> Tally:
    return check_documents(
        _profiles(), examples, tmp_path, _profile_commands, lambda d: d / "profile.yaml"
    )


def _recipe_tally(tmp_path: Path, examples: int) -> Tally:
    return check_documents(
        _recipes(), examples, tmp_path, lambda _: RECIPE_COMMANDS, lambda d: d / "task.yaml"
    )


def _lab_tally(sshd, tmp_path: Path, examples: int) -> Tally:
    return check_documents(
        _lab(sshd), examples, tmp_path, lambda _: LAB_COMMANDS, lambda d: d / "devices.yaml"
    )


def test_broken_device_profiles_are_refused_naming_file_and_field(tmp_path, request):
    _profile_tally(tmp_path, CI_EXAMPLES).report(request.node.nodeid)


def test_broken_task_recipes_are_refused_before_training(tmp_path, request):
    _recipe_tally(tmp_path, CI_EXAMPLES).report(request.node.nodeid)


def test_broken_lab_files_are_refused_before_any_device_is_contacted(sshd, tmp_path, request):
    _lab_tally(sshd, tmp_path, CI_EXAMPLES).report(request.node.nodeid)


def test_broken_manifests_make_verify_exit_2_or_name_the_disagreeing_file(
    bundle, tmp_path, request
):
    _manifest_tally(bundle, tmp_path, CI_EXAMPLES).report(request.node.nodeid)


@pytest.mark.slow
def test_broken_device_profiles_full_count(tmp_path, request):
    _profile_tally(tmp_path, SLOW_EXAMPLES).report(request.node.nodeid)


@pytest.mark.slow
def test_broken_task_recipes_full_count(tmp_path, request):
    _recipe_tally(tmp_path, SLOW_EXAMPLES).report(request.node.nodeid)


@pytest.mark.slow
def test_broken_lab_files_full_count(sshd, tmp_path, request):
    _lab_tally(sshd, tmp_path, SLOW_EXAMPLES).report(request.node.nodeid)


@pytest.mark.slow
def test_broken_manifests_full_count(bundle, tmp_path, request):
    _manifest_tally(bundle, tmp_path, SLOW_EXAMPLES).report(request.node.nodeid)
