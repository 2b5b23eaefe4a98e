"""`edgedistill distill` as a user runs it: JSON output, baseline, methods, refusals, SIGINT."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import TINY_RECIPE, invoke, run_cli

STUDENT = "mbv2:d=1,r=16,w=0.25"


def distill(*args: str, out=None, runner=invoke):
    """In this process by default; `runner=run_cli` for a real one."""
    extra = ["--out", str(out)] if out is not None else []
    command = ["distill", "--task", str(TINY_RECIPE), "--student", STUDENT, *extra, *args]
    return runner(*command, env={"COLUMNS": "400"})


def refused(result, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())  # the console wraps long lines
    for needle in needles:
        assert needle in message, result.stderr
    assert result.stdout.strip() == ""


@pytest.fixture(scope="module")
def kd_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("distill") / "kd"
    return distill("--epochs", "2", "--json", out=out, runner=run_cli), out  # a real process


def test_json_gives_accuracy_teacher_accuracy_epochs_and_seconds(kd_run):
    result, out = kd_run
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document == json.loads((out / "result.json").read_text())
    for key in ("accuracy", "teacher_accuracy", "epochs_run", "seconds"):
        assert isinstance(document[key], (int, float)), key
    assert document["epochs_run"] == 2 and document["method"] == "kd"
    assert document["teacher_outputs"]["mode"] == "cached"
    assert (out / "student.safetensors").is_file() and (out / "student.json").is_file()
    assert json.loads((out / "student.json").read_text())["spec"] == STUDENT


def test_ce_trains_the_same_student_without_a_teacher(tmp_path):
    result = distill("--loss", "ce", "--epochs", "1", "--json", out=tmp_path / "ce")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["method"] == "ce" and document["teacher_outputs"]["mode"] == "none"
    assert document["stages"][0]["teacher"].startswith("none")


def test_labels_fraction_keeps_labels_on_a_part_of_the_train_split(tmp_path):
    result = distill("--labels-fraction", "0.1", "--epochs", "1", "--json", out=tmp_path / "r")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert 0.08 * document["train_samples"] <= document["labeled_samples"]
    assert document["labeled_samples"] <= 0.12 * document["train_samples"]


def test_born_again_reports_every_generation(tmp_path):
    result = distill("--loss", "born-again", "--epochs", "1", "--json", out=tmp_path / "ban")
    assert result.returncode == 0, result.stderr
    stages = json.loads(result.stdout)["stages"]
    assert [s["name"] for s in stages] == ["generation-0", "generation-1", "generation-2"]
    assert stages[0]["teacher"].startswith("none") and stages[1]["teacher"] == "generation-0"
    assert all(0 <= s["accuracy"] <= 1 for s in stages)


def test_a_previous_run_can_be_a_teacher_of_another_architecture(kd_run, tmp_path):
    _, first = kd_run
    result = distill(
        "--loss", "multi-teacher", "--teacher", "task", "--teacher", str(first),
        "--epochs", "1", "--json", out=tmp_path / "multi",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [t["name"] for t in document["teachers"]] == ["task", str(first)]


def test_unknown_loss_is_refused_with_a_suggestion(tmp_path):
    refused(distill("--loss", "kd,fitnt", out=tmp_path / "r"), "--loss", "did you mean fitnet")
    assert not (tmp_path / "r").exists()


def test_wrong_layer_is_refused_with_the_available_names_and_shapes(tmp_path):
    result = distill("--loss", "kd,fitnet", "--layers", "features.9=layers.0", out=tmp_path / "r")
    refused(result, "fitnet", "features.9", "features.1 [", "stem [")


def test_feature_loss_without_pairs_lists_both_models_layers(tmp_path):
    refused(distill("--loss", "at", out=tmp_path / "r"), "at", "--layers", "layers.1 [64, 16, 16]")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--labels-fraction", "0"], "--labels-fraction"),
        (["--epochs", "0"], "--epochs"),
        (["--teacher", "no-such-folder"], "--teacher"),
        (["--loss", "born-again,progressive"], "at most one"),
    ],
)
def test_bad_flags_are_refused(args, needle, tmp_path):
    refused(distill(*args, out=tmp_path / "r"), needle)


def test_a_non_empty_out_needs_resume(kd_run):
    _, out = kd_run
    refused(distill("--epochs", "2", out=out), "--out", "--resume")


def test_resume_refuses_changed_settings(kd_run):
    _, out = kd_run
    refused(distill("--epochs", "3", "--resume", out=out), "--epochs", "started with 2")


def test_resume_of_a_finished_run_trains_nothing(kd_run):
    result, out = kd_run
    again = invoke("distill", "--out", str(out), "--resume", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["accuracy"] == json.loads(result.stdout)["accuracy"]


def test_sigint_stops_with_a_checkpoint_and_resume_finishes(tmp_path):
    out = tmp_path / "interrupted"
    command = [sys.executable, "-m", "edgedistill", "distill", "--task", str(TINY_RECIPE)]
    command += ["--student", STUDENT, "--epochs", "4", "--out", str(out), "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = out / "stages" / "0-student" / "train-state.safetensors"
    deadline = time.monotonic() + 300
    while not state.is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert state.is_file(), "no checkpoint after the first epoch"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr and stdout == ""
    assert not (out / "result.json").exists()
    resumed = invoke("distill", "--out", str(out), "--resume", "--epochs", "4", "--json")
    assert resumed.returncode == 0, resumed.stderr
    document = json.loads(resumed.stdout)
    assert document["resumed"] is True and document["epochs_run"] >= 2


def test_progressive_goes_through_an_intermediate_between_the_sizes(tmp_path):
    result = distill("--loss", "kd,progressive", "--epochs", "1", "--json", out=tmp_path / "p")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    intermediate, student = document["stages"]
    assert intermediate["name"] == "intermediate" and intermediate["teacher"] == "task"
    assert student["teacher"] == "intermediate" and student["student"] == STUDENT
    from edgedistill.students.select import candidate_cost

    macs = candidate_cost(intermediate["student"], (1, 32, 32), 10).macs
    assert document["macs"] < macs < document["teachers"][0]["macs"]
