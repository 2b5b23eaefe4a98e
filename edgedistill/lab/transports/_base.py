"""Transport: push a file, run an argv, pull a file on a lab device; retries and integrity here.

A subclass supplies four primitives (connect, exec, upload, download). This base class turns
them into steps a lab can trust: every file arrives under a temporary name, is checked with
sha256 on the device, then renamed; every step has a wall-clock timeout; a dropped connection is
reconnected and the step repeated only when the step is idempotent (a cut benchmark run is an
infrastructure failure, never a result); the per-run work directory is removed on close.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from edgedistill import atomic
from edgedistill.hashing import sha256_file
from edgedistill.lab.devices import DeviceEntry, LinuxDevice
from edgedistill.lab.errors import LabInfrastructureError, TransientLabError

log = logging.getLogger(__name__)
T = TypeVar("T")
SESSION_PREFIX = "edgedistill-"
_SHA256 = re.compile(r"\\?([0-9a-fA-F]{64})\b")
# Arguments: (temporary, expected sha256, final) triples. Values arrive as positional
# parameters, never as script text. Exit 3: a file arrived damaged (its temporary is removed).
VERIFY_AND_RENAME = """
status=0
while [ "$#" -ge 3 ]; do
  actual=$(sha256sum < "$1") || exit 4
  case "$actual" in
    "$2"*) mv -f -- "$1" "$3" || exit 5 ;;
    *) rm -f -- "$1"; printf 'damaged: %s\\n' "$3"; status=3 ;;
  esac
  shift 3
done
exit "$status"
"""


@dataclass
class CommandResult:
    argv: list[str]
    exit_status: int
    stdout: str
    stderr: str
    seconds: float

    def check(self, uri: str, what: str) -> CommandResult:
        """Raise an infrastructure error (with the tail of stderr) unless the command exited 0."""
        if self.exit_status != 0:
            tail = (self.stderr or self.stdout).strip()[-2000:]
            raise LabInfrastructureError(
                f"{uri}: {what} failed with exit status {self.exit_status}: {tail or '(no output)'}"
            )
        return self


def check_remote_name(name: str) -> str:
    """A file name inside the run directory: any characters but '/' and NUL; not . or .."""
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise ValueError(f"not a plain file name: {name!r}")
    return name


class Transport(ABC):
    """One connection to one lab device, with a private work directory for this run."""

    Device: ClassVar[type[DeviceEntry]]  # its lab-file entry; Device.platform says what runs there
    default_python: ClassVar[str] = "python3"
    UPLOAD_METHOD: ClassVar[str] = "copy"

    def __init__(self, device: DeviceEntry) -> None:
        self.device = device
        self.session_dir: str | None = None
        self._connected = False

    # -- what a transport implements -------------------------------------------------------
    @abstractmethod
    def _connect(self) -> None:
        """Open the connection; raise TransientLabError when it may work on a retry."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Close the connection; never raise."""

    @abstractmethod
    def _exec(self, argv: list[str], timeout: float) -> CommandResult:
        """Run argv on the device (each argument reaches it unchanged) and wait for it."""

    @abstractmethod
    def _upload(self, local: Path, remote: str, timeout: float) -> None: ...

    @abstractmethod
    def _download(self, remote: str, local: Path, timeout: float) -> None: ...

    # -- public steps ----------------------------------------------------------------------
    @property
    def uri(self) -> str:
        return self.device.uri

    @property
    def upload_method(self) -> str:
        """How files reach the device (before their sha256 check), as `lab check` shows it."""
        return self.UPLOAD_METHOD

    @property
    def python(self) -> str:
        """The Python that runs device-side scripts: the lab file's `python`, else the default."""
        if not isinstance(self.device, LinuxDevice):
            raise LabInfrastructureError(
                f"{self.uri}: a {self.device.platform} device runs no device-side Python scripts"
            )
        return self.device.python or self.default_python

    def open(self) -> Transport:
        """Connect and create this run's private directory under the device's workdir."""
        self.session_dir = None
        name = f"{SESSION_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
        session = f"{self.device.workdir.rstrip('/')}/{name}"
        self.run(["mkdir", "-p", "-m", "700", "--", session], idempotent=True).check(
            self.uri, f"creating {session}"
        )
        self.session_dir = session
        return self

    def __enter__(self) -> Transport:
        """`with open_transport(device) as t:` uses the run directory open_transport made (opening
        again would leave that first directory behind on the device)."""
        return self if self.session_dir is not None else self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def remote_path(self, name: str) -> str:
        if self.session_dir is None:
            raise RuntimeError("transport is not open")
        return f"{self.session_dir}/{check_remote_name(name)}"

    def run(
        self,
        argv: list[str],
        timeout: float | None = None,
        idempotent: bool = False,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        """Run argv on the device with the lab file's environment; exit status is not checked."""
        if not argv or not all(isinstance(arg, str) for arg in argv):
            raise TypeError("argv must be a non-empty list of str")
        variables = {**self.device.env, **(env or {})}
        command = ["env", *(f"{k}={v}" for k, v in variables.items()), *argv] if variables else argv
        limit = timeout or self.device.step_timeout_s
        return self._step(f"running {argv[0]}", lambda: self._exec(command, limit), idempotent)

    def push(self, local: Path, name: str | None = None) -> str:
        """Copy `local` into the run directory as `name`; verified by sha256 before it appears."""
        name = name or local.name
        return self.push_many({name: local})[name]

    def push_many(self, files: dict[str, Path]) -> dict[str, str]:
        """Copy files into the run directory (name -> local path) in one verified step.

        Each file is uploaded under a temporary name; one device command then checks every
        sha256 and renames the good ones; a damaged or cut upload repeats the whole step.
        """
        finals = {name: self.remote_path(name) for name in files}
        expected = {name: sha256_file(path) for name, path in files.items()}
        temporaries: list[str] = []

        def attempt() -> dict[str, str]:
            triples: list[str] = []
            for name, path in files.items():
                temporary = self.remote_path(f".{name}.{secrets.token_hex(4)}.part")
                temporaries.append(temporary)
                self._upload(path, temporary, self.device.step_timeout_s)
                triples += [temporary, expected[name], finals[name]]
            check = self._exec(
                ["sh", "-c", VERIFY_AND_RENAME, "sh", *triples], self.device.step_timeout_s
            )
            if check.exit_status == 3:
                raise TransientLabError(f"upload arrived damaged: {check.stdout.strip()}")
            check.check(self.uri, "verifying the upload (sha256) and renaming it")
            return finals

        names = ", ".join(files)
        self._step(f"uploading {names}", attempt, idempotent=True)
        leftovers = temporaries[: -len(files)]  # what cut attempts left behind
        if leftovers:
            self.run(["rm", "-f", "--", *leftovers], idempotent=True)
        log.debug("%s: pushed %s", self.uri, names)
        return finals

    def pull(self, remote: str, local: Path) -> Path:
        """Copy a device file to `local`, verified by sha256; it appears only when it matches."""
        local.parent.mkdir(parents=True, exist_ok=True)

        def attempt() -> Path:
            with atomic.replacing(local, suffix=".part") as temporary:
                self._download(remote, temporary, self.device.step_timeout_s)
                expected = self._sha256_now(remote)
                if sha256_file(temporary) != expected:
                    raise TransientLabError(f"{remote} arrived damaged (sha256 mismatch)")
            return local

        return self._step(f"downloading {remote}", attempt, idempotent=True)

    def sha256(self, remote: str) -> str:
        return self._step(f"hashing {remote}", lambda: self._sha256_now(remote), idempotent=True)

    def close(self) -> None:
        """Remove this run's directory on the device (best effort) and disconnect."""
        session, self.session_dir = self.session_dir, None
        try:
            if session:
                self._remove_session(session)
        finally:
            self._connected = False
            self._disconnect()

    def _remove_session(self, session: str) -> None:
        """`rm -rf` the run directory: over the link in hand, and when that fails (a step that
        failed without a transient error can leave a dead link marked connected), over one
        fresh connection, so that a dropped run still cleans up after itself."""
        parent = self.device.workdir.rstrip("/")
        assert session.startswith(f"{parent}/{SESSION_PREFIX}")
        while True:
            fresh = not self._connected
            try:
                if fresh:
                    self._connect()
                    self._connected = True
                result = self._exec(["rm", "-rf", "--", session], self.device.step_timeout_s)
            except (LabInfrastructureError, OSError) as exc:
                self._connected = False
                self._disconnect()
                if fresh or not isinstance(exc, TransientLabError):
                    log.warning("%s: could not remove %s (%s)", self.uri, session, exc)
                    return
                continue  # the link in hand was dead: one fresh connection
            if result.exit_status != 0:
                log.warning("%s: could not remove %s: %s", self.uri, session, result.stderr)
            return

    # -- machinery -------------------------------------------------------------------------
    def _sha256_now(self, remote: str) -> str:
        result = self._exec(["sha256sum", "--", remote], self.device.step_timeout_s)
        result.check(self.uri, f"sha256sum {remote}")
        match = _SHA256.match(result.stdout.strip())
        if not match:
            raise LabInfrastructureError(
                f"{self.uri}: unexpected sha256sum output {result.stdout!r}"
            )
        return match.group(1).lower()

    def _ensure_connected(self) -> None:
        """Connecting is idempotent: retried whatever the step is."""
        attempts = 1 + self.device.retries
        for attempt in range(1, attempts + 1):
            if self._connected:
                return
            try:
                self._connect()
                self._connected = True
            except TransientLabError as exc:
                self._disconnect()
                if attempt == attempts:
                    raise LabInfrastructureError(
                        f"{self.uri}: cannot connect ({exc}; {attempts} attempt(s))"
                    ) from None
                log.warning("%s: cannot connect (%s); retrying", self.uri, exc)
                time.sleep(min(0.5 * 2**attempt, 5.0))

    def _step(self, what: str, action: Callable[[], T], idempotent: bool) -> T:
        attempts = 1 + (self.device.retries if idempotent else 0)
        for attempt in range(1, attempts + 1):
            self._ensure_connected()
            try:
                return action()
            except TransientLabError as exc:
                self._connected = False
                self._disconnect()
                if not idempotent:
                    raise LabInfrastructureError(
                        f"{self.uri}: {what} was cut off ({exc}); a cut run is not repeated and "
                        "gives no result"
                    ) from None
                if attempt == attempts:
                    raise LabInfrastructureError(
                        f"{self.uri}: {what} failed after {attempts} attempt(s): {exc}"
                    ) from None
                log.warning(
                    "%s: %s failed (%s); reconnecting, attempt %d of %d",
                    self.uri,
                    what,
                    exc,
                    attempt + 1,
                    attempts,
                )
                time.sleep(min(0.5 * 2**attempt, 5.0))
        raise AssertionError("unreachable")
