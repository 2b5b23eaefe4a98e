"""adb transport: `adb -s SERIAL` push / shell / pull, with the device states adb documents.

- `offline`: `adb reconnect offline`, wait for the device, retry (idempotent steps only).
- `unauthorized`: fail at once and say what to do on the phone; retrying cannot help.
- `adb shell` may exit 0 when the command failed (before the shell protocol of Android 7, and
  some vendor builds still do), so every command prints a per-call marker with its exit status
  and the status is taken from there. A missing marker means the shell was cut off.
- Without the shell protocol adb runs the command on a pty, which turns every \n into \r\n; that
  is undone only when the marker's own newlines show it happened, so output (a file name holding
  \r\n) otherwise arrives byte for byte.
Commands are joined into one line for the device's shell (as adb does), each argument quoted.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from edgedistill.errors import UserInputError
from edgedistill.lab.devices import AndroidDevice
from edgedistill.lab.errors import LabAccessError, LabInfrastructureError, TransientLabError
from edgedistill.lab.transports._base import CommandResult, Transport
from edgedistill.lab.transports._registry import TRANSPORTS
from edgedistill.lab.transports.ssh import quote_command

log = logging.getLogger(__name__)
# adb's own messages when the link to the device is (for now) gone: worth a reconnect.
_LINK_LOST = (
    "device offline",
    "no devices/emulators found",
    "error: closed",
    "not found",
    "protocol fault",
    "connection reset",
    "device still connecting",
)


class AdbDevice(AndroidDevice):
    """An Android device reached over adb: its serial, and which adb reaches it."""

    transport: Literal["adb"]
    serial: str = Field(pattern=r"^[^\s-][^\s]*$", description="as `adb devices` lists it")
    adb: str = Field("adb", min_length=1, description="the adb executable (default: on PATH)")

    @property
    def uri(self) -> str:
        return f"adb://{self.serial}"


def unauthorized_message(device: AdbDevice) -> str:
    return (
        f"{device.uri}: the phone has not authorized this computer (adb state 'unauthorized'). "
        "Unlock the phone and accept the 'Allow USB debugging?' prompt for this computer's key "
        "(tick 'Always allow'); if no prompt shows, replug the cable or revoke USB debugging "
        "authorizations in Developer options and replug. Then run again."
    )


@TRANSPORTS.register("adb")
class AdbTransport(Transport):
    Device = AdbDevice
    UPLOAD_METHOD = "adb push"
    device: AdbDevice

    def _adb(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        executable = shutil.which(self.device.adb)
        if executable is None:
            raise UserInputError(
                f"device {self.device.name}: field adb: {self.device.adb!r} not found; install "
                "Android platform-tools or give the path to adb"
            )
        try:
            completed = subprocess.run(
                [executable, "-s", self.device.serial, *args],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise TransientLabError(f"adb {args[0]} took longer than {timeout:g} s") from None
        # Decoded by hand: text=True would also turn every \r and \r\n of the device's output
        # into \n (universal newlines), changing what a command printed.
        return subprocess.CompletedProcess(
            completed.args,
            completed.returncode,
            completed.stdout.decode("utf-8", "replace"),
            completed.stderr.decode("utf-8", "replace"),
        )

    def state(self) -> str:
        """`device`, `offline`, `unauthorized`, `no permissions` or `missing`."""
        result = self._adb(["get-state"], self.device.connect_timeout_s)
        text = f"{result.stdout}\n{result.stderr}".lower()
        if result.returncode == 0 and result.stdout.strip() == "device":
            return "device"
        for state in ("unauthorized", "offline", "no permissions"):
            if state in text:
                return state
        return "missing"

    def _connect(self) -> None:
        state = self.state()
        if state == "offline":
            log.warning("%s: offline; adb reconnect offline", self.uri)
            self._adb(["reconnect", "offline"], self.device.connect_timeout_s)
            self._adb(["wait-for-device"], self.device.connect_timeout_s)
            state = self.state()
        if state == "device":
            return
        if state == "unauthorized":
            raise LabAccessError(unauthorized_message(self.device))
        if state == "no permissions":
            raise LabAccessError(
                f"{self.uri}: adb has no permission to open the USB device; add a udev rule for "
                "the phone's vendor id (see the Android 'Run apps on a hardware device' guide)"
            )
        raise TransientLabError(f"adb state is {state!r}")

    def _disconnect(self) -> None:
        pass

    def _exec(self, argv: list[str], timeout: float) -> CommandResult:
        marker = f"__EDGEDISTILL_EXIT_{secrets.token_hex(6)}__"
        line = f"{quote_command(argv)}; printf '\\n{marker}%d\\n' \"$?\""
        started = time.perf_counter()
        result = self._adb(["shell", line], timeout)
        found = re.search(rf"\r?\n{marker}(\d+)(\r?\n)?\Z", result.stdout)
        if found is None:
            self._raise_link_error(result, f"running {argv[0]}")
            raise TransientLabError(f"adb shell ended without the exit marker running {argv[0]}")
        pty = found.group(2) == "\r\n"  # our own last \n came back as \r\n: a pty translated
        end = found.start() + (0 if pty or found.group(0)[0] != "\r" else 1)
        stdout = result.stdout[:end]
        if pty:
            stdout = stdout.replace("\r\n", "\n")
        return CommandResult(
            argv, int(found.group(1)), stdout, result.stderr, time.perf_counter() - started
        )

    def _upload(self, local: Path, remote: str, timeout: float) -> None:
        result = self._adb(["push", str(local), remote], timeout)
        if result.returncode != 0:
            self._raise_link_error(result, f"pushing {local.name}")
            raise LabInfrastructureError(f"{self.uri}: adb push failed: {result.stderr.strip()}")

    def _download(self, remote: str, local: Path, timeout: float) -> None:
        result = self._adb(["pull", remote, str(local)], timeout)
        if result.returncode != 0:
            self._raise_link_error(result, f"pulling {remote}")
            raise LabInfrastructureError(f"{self.uri}: adb pull failed: {result.stderr.strip()}")

    def _raise_link_error(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        text = f"{result.stdout}\n{result.stderr}".lower()
        if "unauthorized" in text:
            raise LabAccessError(unauthorized_message(self.device))
        if any(sign in text for sign in _LINK_LOST):
            raise TransientLabError(f"{what}: {result.stderr.strip() or 'device link lost'}")
