"""Run a device-side script from `targets/` on a lab device: the hook every device job goes through.

The script and any files it needs are pushed into the run directory (verified by sha256), then
run with the device's python. Arguments are an argv list; paths the script needs are the
run-directory paths `transport.remote_path(name)` returns. Example (a TensorRT engine build):

    with open_transport(device) as transport:
        result = run_device_script(
            transport, "linux/trt_build.py",
            ["--onnx", transport.remote_path("model.onnx"),
             "--engine", transport.remote_path("model.engine"), "--precision", "fp16"],
            files={"model.onnx": onnx_path},
        )
        transport.pull(transport.remote_path("model.engine"), local_engine)
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from edgedistill.lab.errors import LabInfrastructureError
from edgedistill.lab.targets import target_file
from edgedistill.lab.transports import CommandResult, Transport


def run_device_script(
    transport: Transport,
    script: str,
    args: list[str],
    files: dict[str, Path] | None = None,
    timeout: float | None = None,
    idempotent: bool = False,
) -> CommandResult:
    """Push `targets/<script>` (and `files`, name -> local path), run it; exit status unchecked."""
    local = target_file(script)
    name = PurePosixPath(script).name
    pushed = transport.push_many({name: local, **(files or {})})
    return transport.run([transport.python, pushed[name], *args], timeout, idempotent)


def json_document(result: CommandResult, uri: str, what: str) -> dict:
    """The JSON document a device-side script printed as its last stdout line."""
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    try:
        document = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise LabInfrastructureError(
            f"{uri}: {what} printed no JSON result (stdout: {result.stdout[-500:]!r}, "
            f"stderr: {result.stderr[-1000:]!r})"
        ) from None
    if not isinstance(document, dict):
        raise LabInfrastructureError(f"{uri}: {what} printed {type(document).__name__}, not JSON")
    return document
