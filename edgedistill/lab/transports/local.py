"""Local transport: the lab device is this machine (same steps as ssh, through subprocess)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

from edgedistill.hashing import sha256_file
from edgedistill.lab.devices import LinuxDevice
from edgedistill.lab.errors import LabInfrastructureError
from edgedistill.lab.transports._base import CommandResult, Transport
from edgedistill.lab.transports._registry import TRANSPORTS


class LocalDevice(LinuxDevice):
    """This machine as a Linux lab device (its Python, unless `python` says otherwise)."""

    transport: Literal["local"]

    @property
    def uri(self) -> str:
        return f"local://{socket.gethostname()}"


@TRANSPORTS.register("local")
class LocalTransport(Transport):
    Device = LocalDevice
    UPLOAD_METHOD = "local copy"
    default_python = sys.executable

    def _connect(self) -> None:
        pass

    def _disconnect(self) -> None:
        pass

    def _exec(self, argv: list[str], timeout: float) -> CommandResult:
        started = time.perf_counter()
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,
            )
        except OSError as exc:
            return CommandResult(argv, 127, "", f"{argv[0]}: {exc.strerror}", 0.0)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise LabInfrastructureError(
                f"{self.uri}: {argv[0]} did not finish within {timeout:g} s (killed)"
            ) from None
        return CommandResult(
            argv, process.returncode, stdout, stderr, time.perf_counter() - started
        )

    def _upload(self, local: Path, remote: str, timeout: float) -> None:
        shutil.copyfile(local, remote)

    def _download(self, remote: str, local: Path, timeout: float) -> None:
        shutil.copyfile(remote, local)

    def _sha256_now(self, remote: str) -> str:
        return sha256_file(Path(remote))
