"""The cascade and the drift audit of a finished digits run, measured: the run's recorded
cascade (τ, coverage, accuracy on val and test), then `audit` on the test split as stored and
on copies shifted by growing amounts (Gaussian noise of rising sigma, inversion, a brightness
gain), each with its agreement, coverage, PSI, accuracies and verdict, and the seconds it took.

Run: .venv/bin/python benchmarks/drift_audit.py RUN_DIR [--task digits]
     (RUN_DIR from `edgedistill fit --task digits ...`, e.g. `make demo`'s edgedistill-runs/demo)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import host_line  # noqa: E402

from edgedistill.audit.drift import audit_run  # noqa: E402
from edgedistill.tasks.task import load_task  # noqa: E402


def test_split(task: str) -> tuple[np.ndarray, np.ndarray]:
    loaded = load_task(task)
    rows = np.asarray(loaded.parts["test"])
    images = np.stack([loaded.table.read(int(r)) for r in rows]).astype(np.float32)
    return images, np.asarray(loaded.table.labels)[rows]


def shifts(images: np.ndarray) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = [("as stored", images)]
    for sigma in (1.0, 2.0, 4.0, 8.0):
        noise = rng.normal(0, sigma, images.shape).astype(np.float32)
        out.append((f"noise sigma {sigma:g}", np.clip(images + noise, 0, 16)))
    out.append(("brightness x0.5", images * 0.5))
    out.append(("inverted", 16.0 - images))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--task", default="digits")
    args = parser.parse_args()
    print(host_line())
    summary = json.loads((args.run / "summary.json").read_text())
    cascade = summary["evaluation"]["cascade"]
    print(
        f"run {args.run}: student {summary['student']['spec']} "
        f"({summary['evaluation']['artifact']}), teacher {summary['teacher']['accuracy']:.4f}"
    )
    for split in ("val", "test"):
        figures = cascade[split]
        print(
            f"  cascade {split}: tau {cascade['threshold']:.4f} coverage "
            f"{figures['coverage']:.3f} cascade {figures['accuracy']:.4f} student "
            f"{figures['student_accuracy']:.4f} teacher {figures['teacher_accuracy']:.4f}"
        )
    images, labels = test_split(args.task)
    print(
        "| data | agreement (val) | coverage (val) | PSI | student / teacher / cascade "
        "accuracy | verdict | seconds |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for name, x in shifts(images):
            path = Path(scratch) / "data.npz"
            np.savez(path, x=x, y=labels)
            started = time.perf_counter()
            report = audit_run(args.run, f"npz:{path}")
            seconds = time.perf_counter() - started
            acc = report.accuracy
            print(
                f"| {name} | {report.agreement:.3f} ({report.agreement_val:.3f}) | "
                f"{report.coverage:.3f} ({report.coverage_val:.3f}) | {report.psi:.3f} "
                f"{report.psi_band} | {acc['student']:.3f} / {acc['teacher']:.3f} / "
                f"{acc['cascade']:.3f} | {'ok' if report.ok else 'DRIFT'} | {seconds:.1f} |"
            )


if __name__ == "__main__":
    main()
