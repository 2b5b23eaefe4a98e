"""An artifact run by its host runtime in a child process with a time limit (`bundle verify
--run`): a damaged file that makes onnxruntime or LiteRT crash or hang becomes an outcome in
words, never a crash or a hang of the toolkit.

The child (`python -m edgedistill.export.run_isolated FORMAT FILE INPUTS.npy OUTPUTS.npy
RESULT`) loads the file with the format's host runner, predicts the inputs and saves the
outputs; arrays cross as .npy files read with allow_pickle=False.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from edgedistill.child import model_timeout_s, run_child, write_result
from edgedistill.errors import MissingExtraError, UserInputError
from edgedistill.export._registry import EXPORTERS

if TYPE_CHECKING:
    import numpy as np

Ran = Literal["ran", "skipped", "fails"]


@dataclass
class IsolatedRun:
    """`ran` with `outputs`; `skipped` (the runtime does not run here, `detail` says why) or
    `fails` (refused, crashed, timed out: `detail` in words). `runtime` names what ran it."""

    status: Ran
    detail: str
    runtime: str | None = None
    outputs: np.ndarray | None = None


def run_isolated(format_name: str, file: Path, inputs: np.ndarray) -> IsolatedRun:
    """Run `file` (an artifact of `format_name`) on `inputs` in a child process."""
    import numpy as np

    runs_on = EXPORTERS.get(format_name).runs_on
    with tempfile.TemporaryDirectory(prefix="edgedistill-run-") as scratch:
        folder = Path(scratch)
        np.save(folder / "inputs.npy", np.ascontiguousarray(inputs), allow_pickle=False)
        args = [format_name, str(file), str(folder / "inputs.npy"), str(folder / "outputs.npy")]
        outcome = run_child(__name__, args, model_timeout_s(), folder)
        if outcome.failure is not None:
            return IsolatedRun("fails", f"{runs_on} {outcome.failure} on it", runs_on)
        assert outcome.result is not None
        status = outcome.result.get("status")
        detail, runtime = str(outcome.result.get("detail", "")), outcome.result.get("runtime")
        if status in ("skipped", "fails"):
            return IsolatedRun(status, detail, runtime or runs_on)
        try:
            outputs = np.load(folder / "outputs.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            return IsolatedRun("fails", f"{runs_on} wrote no outputs ({exc})", runs_on)
    return IsolatedRun("ran", "", str(runtime), outputs)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    message = lines[0] if lines else type(exc).__name__
    return message if len(message) <= 300 else message[:297] + "..."


def _run(format_name: str, file: str, inputs_path: str, outputs_path: str) -> dict:
    import numpy as np

    exporter = EXPORTERS.get(format_name)
    try:
        runner = exporter.host_runner(Path(file))
    except MissingExtraError as exc:  # pip install 'edgedistill[x]'
        return {"status": "skipped", "detail": str(exc), "runtime": exporter.runs_on}
    except UserInputError as exc:  # a refused file (external data leaving its folder)
        return {"status": "fails", "detail": f"refused: {exc}", "runtime": exporter.runs_on}
    except Exception as exc:  # the runtime refuses the file: that is the finding
        detail = f"{exporter.runs_on} cannot load it ({_first_line(exc)})"
        return {"status": "fails", "detail": detail, "runtime": exporter.runs_on}
    if runner is None:
        detail = f"needs {exporter.runs_on}, which does not run on this host"
        return {"status": "skipped", "detail": detail, "runtime": exporter.runs_on}
    try:
        outputs = np.asarray(runner.predict(np.load(inputs_path, allow_pickle=False)))
    except UserInputError as exc:  # onnx sessions are made here: external data refused
        return {"status": "fails", "detail": f"refused: {exc}", "runtime": runner.runtime}
    except Exception as exc:
        return {"status": "fails", "detail": f"{runner.runtime} failed ({_first_line(exc)})",
                "runtime": runner.runtime}  # fmt: skip
    np.save(outputs_path, np.ascontiguousarray(outputs, dtype=np.float32), allow_pickle=False)
    return {"status": "ran", "runtime": runner.runtime}


def main(argv: list[str]) -> None:
    format_name, file, inputs_path, outputs_path, result = argv
    write_result(result, _run(format_name, file, inputs_path, outputs_path))


if __name__ == "__main__":
    main(sys.argv[1:])
