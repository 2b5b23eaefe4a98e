"""`fit --resume` after `kill -9` at random points: does the resumed run end with the metrics of
an uninterrupted one, and how much work did each kill lose?

One uninterrupted `fit` on the tiny digits recipe, then, per seed, a `fit` killed with SIGKILL
after a random delay (uniform over the uninterrupted run's wall time, so kills land in search,
teacher, distillation, export or measurement), then `fit --resume`. Printed per kill point: the
delay, the stage the kill hit (what the staging folder held), the epochs already checkpointed,
the resumed run's wall time, and whether student accuracy (PyTorch and deployed), best epoch,
epochs run and the per-epoch history equal the uninterrupted run's.

Run: .venv/bin/python benchmarks/fit_resume.py [--kills 5] [--epochs 4]
Target (issue 10): every resumed run completes with identical metrics; a kill loses at most
one checkpoint interval (one epoch) of distillation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = Path(__file__).resolve().parent.parent / "tests" / "data" / "tiny_digits.yaml"


def fit_argv(out: Path, epochs: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "edgedistill", "fit", "--device", "host-cpu", "--budget", "0.06ms",
        "--task", str(RECIPE), "--epochs", str(epochs), "--out", str(out), *extra,
    ]  # fmt: skip


def learned(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    result = json.loads((out / "checkpoint" / "result.json").read_text())
    student = summary["student"]
    return {
        "spec": student["spec"],
        "accuracy_fp32": student["accuracy_fp32"],
        "accuracy": student["accuracy"],
        "best_epoch": student["best_epoch"],
        "epochs_run": student["epochs_run"],
        "history": [stage["history"] for stage in result["stages"]],
    }


def stage_reached(staging: Path) -> tuple[str, int]:
    """(the stage a kill hit, epochs checkpointed by then), read from the staging folder."""
    state = staging / "checkpoint" / "stages" / "0-student" / "train-state.safetensors"
    epochs = 0
    if state.is_file():
        from safetensors import safe_open

        with safe_open(str(state), "pt") as handle:
            epochs = json.loads(handle.metadata()["edgedistill"]).get("epoch", 0)
    if (staging / "bundle").is_dir():
        return "export/measure", epochs
    if (staging / "checkpoint" / "result.json").is_file():
        return "after distill", epochs
    if state.is_file():
        return "distill", epochs
    if (staging / "search.json").is_file():
        return "teacher/distill start", epochs
    return "search", epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="edgedistill-resume-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.setdefault("EDGEDISTILL_CACHE_DIR", str(root / "cache"))
    env.setdefault("EDGEDISTILL_DATA_DIR", str(root / "data"))
    print(f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")

    # Warm-up: the first fit calibrates the host and trains the teacher; time the next one.
    subprocess.run(fit_argv(root / "warm", args.epochs), env=env, capture_output=True)
    started = time.perf_counter()
    whole = subprocess.run(fit_argv(root / "whole", args.epochs), env=env, capture_output=True)
    wall = time.perf_counter() - started
    assert whole.returncode in (0, 1), whole.stderr.decode()[-2000:]
    reference = learned(root / "whole")
    print(
        f"uninterrupted fit: {wall:.1f} s, student {reference['spec']}, "
        f"accuracy {reference['accuracy']:.4f}, best epoch {reference['best_epoch']}"
    )

    rng = random.Random(args.seed)
    print("kill  delay_s  stage_hit              epochs_ckpt  resume_s  same_metrics")
    identical = 0
    for index in range(args.kills):
        out = root / f"killed{index}"
        delay = rng.uniform(0.05 * wall, 0.95 * wall)
        process = subprocess.Popen(
            fit_argv(out, args.epochs),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        if process.poll() is not None:
            print(f"{index:>4}  {delay:7.1f}  (finished before the kill)")
            continue
        process.send_signal(signal.SIGKILL)
        process.wait()
        stage, epochs = stage_reached(out.parent / f".{out.name}.partial")
        started = time.perf_counter()
        resumed = subprocess.run(
            fit_argv(out, args.epochs, "--resume"), env=env, capture_output=True
        )
        resume_s = time.perf_counter() - started
        same = resumed.returncode in (0, 1) and learned(out) == reference
        identical += same
        print(f"{index:>4}  {delay:7.1f}  {stage:<22} {epochs:>11}  {resume_s:8.1f}  {same}")
        if not same:
            print(resumed.stderr.decode()[-1500:])
    print(f"{identical}/{args.kills} resumed runs ended with the uninterrupted run's metrics")


if __name__ == "__main__":
    main()
