"""`fit` refuses bad input with exit 2 (1 for an unmeetable budget), a named cause, no traceback,
and leaves no half-written run directory behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TINY_RECIPE, invoke, run_cli


def _assert_clean_refusal(result, code: int, *needles: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert result.stdout.strip() == ""


def _nothing_written(parent: Path) -> None:
    assert [p.name for p in parent.iterdir()] == [], "no partial run directory may remain"


def test_unknown_device_names_the_closest_profiles(tmp_path):
    """A real process, as a user sees it; the other refusals run in-process (`invoke`)."""
    result = run_cli(
        "fit", "--device", "jetson-orin", "--budget", "1ms", "--out", str(tmp_path / "run")
    )
    _assert_clean_refusal(result, 2, "--device", "jetson-orin-nano", "jetson-agx-orin")
    _nothing_written(tmp_path)


@pytest.mark.parametrize("budget", ["10parsecs", "-3ms"])
def test_malformed_budget_names_the_flag(budget, tmp_path):
    result = invoke("fit", "--device", "host-cpu", "--budget", budget, "--out", str(tmp_path / "r"))
    _assert_clean_refusal(result, 2, "--budget", budget)
    _nothing_written(tmp_path)


def test_profile_file_with_wrong_field_names_file_and_field(tmp_path):
    source = Path(__file__).resolve().parent.parent / "profiles" / "rpi5.yaml"
    broken = tmp_path / "my-board.yaml"
    broken.write_text(source.read_text().replace("memory_bandwidth_gb_s:", "memory_bandwith_gb_s:"))
    out = tmp_path / "out"
    out.mkdir()
    result = invoke("fit", "--device", str(broken), "--budget", "1ms", "--out", str(out / "run"))
    _assert_clean_refusal(
        result, 2, "my-board.yaml", "memory_bandwith_gb_s", "memory_bandwidth_gb_s"
    )
    _nothing_written(out)


def test_profile_file_missing_a_field_names_it(tmp_path):
    source = Path(__file__).resolve().parent.parent / "profiles" / "rpi5.yaml"
    lines = [line for line in source.read_text().splitlines() if "cpu_cores:" not in line]
    broken = tmp_path / "board.yaml"
    broken.write_text("\n".join(lines))
    result = invoke("fit", "--device", str(broken), "--budget", "1ms", "--out", str(tmp_path / "r"))
    _assert_clean_refusal(result, 2, "board.yaml", "compute.cpu_cores")


def test_unwritable_out_is_refused_before_any_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = invoke("fit", "--device", "host-cpu", "--budget", "1ms", "--out", str(blocker / "run"))
    _assert_clean_refusal(result, 2, "--out")
    assert "teacher" not in result.stderr.lower()


def test_non_empty_out_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("user data")
    result = invoke(
        "fit", "--device", "host-cpu", "--budget", "1ms", "--out", str(tmp_path / "run")
    )
    _assert_clean_refusal(result, 2, "--out", "not empty")
    assert (tmp_path / "run" / "keep.txt").read_text() == "user data"


def test_unsupported_precision_is_refused_up_front(tmp_path):
    result = invoke(
        "fit",
        "--device",
        "host-cpu",
        "--budget",
        "1ms",
        "--precision",
        "int4",
        "--out",
        str(tmp_path / "r"),
    )
    _assert_clean_refusal(result, 2, "--precision int4")
    _nothing_written(tmp_path)


def test_unknown_format_is_refused_up_front(tmp_path):
    result = invoke(
        "fit",
        "--device",
        "host-cpu",
        "--budget",
        "1ms",
        "--formats",
        "onnx,tflte",
        "--out",
        str(tmp_path / "r"),
    )
    _assert_clean_refusal(result, 2, "--formats", "tflte")
    _nothing_written(tmp_path)


def test_budget_no_candidate_can_meet_exits_1_with_the_fastest_prediction(tmp_path):
    result = invoke(
        "fit",
        "--device",
        "jetson-orin-nano",
        "--budget",
        "1us",
        "--task",
        str(TINY_RECIPE),
        "--out",
        str(tmp_path / "run"),
    )
    _assert_clean_refusal(result, 1, "no candidate fits", "fastest", "predicted at", "mbv2:")
    _nothing_written(tmp_path)
