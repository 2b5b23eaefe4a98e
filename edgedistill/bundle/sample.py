"""The validation sample a bundle carries: model inputs and what each host-runnable artifact
answered to them when the run measured it, so that `bundle verify --run` (and a device team on
its own machine) can check that the files still compute what was measured.

`validation.npz` holds `input` (float32, N x C x H x W, preprocessed as the model takes it;
int64 token ids N x L for a text model) and one `outputs_<k>` array per artifact; the
manifest's `validation_sample` section names the file, the sample count, and for each artifact
path its array and the runtime that produced it.
Read back with `allow_pickle=False`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from edgedistill import atomic
from edgedistill.errors import UserInputError
from edgedistill.inputs import as_array

SAMPLE_NAME = "validation.npz"
SAMPLE_SIZE = 32  # test samples recorded: enough to catch a changed file, small to ship


def write_sample(bundle: Path, inputs: Any, outputs: dict[str, tuple[Any, str]]) -> dict[str, Any]:
    """Write bundle/validation.npz; `outputs`: artifact path (relative to the bundle) ->
    (its outputs on `inputs`, the runtime that produced them). Returns the manifest section."""
    import numpy as np

    arrays = {"input": as_array(inputs)}
    recorded: dict[str, dict[str, str]] = {}
    for index, (path, (values, runtime)) in enumerate(sorted(outputs.items())):
        name = f"outputs_{index}"
        arrays[name] = np.asarray(values, dtype=np.float32)
        recorded[path] = {"array": name, "runtime": runtime}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic.write_bytes(bundle / SAMPLE_NAME, buffer.getvalue())
    return {"path": SAMPLE_NAME, "samples": len(arrays["input"]), "outputs": recorded}


def read_sample(bundle: Path, section: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(inputs, artifact path -> recorded outputs) from the manifest's `validation_sample`."""
    import numpy as np

    path = bundle / section["path"]
    try:
        with np.load(path, allow_pickle=False) as archive:
            inputs = archive["input"]
            outputs = {
                artifact: archive[entry["array"]] for artifact, entry in section["outputs"].items()
            }
    except (OSError, KeyError, ValueError) as exc:
        raise UserInputError(f"{path}: not a readable validation sample ({exc})") from None
    return inputs, outputs
