"""SSH transport (asyncssh): host keys checked against known_hosts, never accepted blindly.

Why asyncssh rather than the system `ssh`/`scp`: host-key refusals arrive as exceptions carrying
the offered key (so the message can give its fingerprint and the exact command that trusts it),
SFTP, keep-alives and per-step timeouts are in-process with no output scraping, and no user
`~/.ssh/config` can silently change what the lab file says (config files are not read).
Commands run through the remote user's POSIX shell, so every argument is `shlex.quote`d.

Files travel over SFTP; a server without an SFTP subsystem (dropbear, a minimal sshd: the
subsystem request is refused) gets them over an exec channel instead, streamed into `cat` on the
device. Either way the base class uploads to a temporary name, checks sha256 on the device and
renames; `upload_method` says which path was used (`lab check` shows it).
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationInfo, field_validator

from edgedistill.errors import MissingExtraError
from edgedistill.lab.devices import LinuxDevice
from edgedistill.lab.errors import LabAccessError, LabInfrastructureError, TransientLabError
from edgedistill.lab.transports._base import CommandResult, Transport
from edgedistill.lab.transports._registry import TRANSPORTS

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
EXEC_UPLOAD = "exec channel (no SFTP subsystem on the device; streamed to cat)"


class SshDevice(LinuxDevice):
    """A Linux device reached over SSH: where it is, who logs in, which keys to trust."""

    transport: Literal["ssh"]
    host: str = Field(pattern=r"^[^\s/@-][^\s/@]*$", description="host name or address")
    port: int = Field(22, ge=1, le=65535)
    user: str = Field(pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$")
    identity_file: Path | None = Field(None, description="private key (default: agent, ~/.ssh)")
    known_hosts: Path = Field(
        DEFAULT_KNOWN_HOSTS, validate_default=True, description="trusted host keys"
    )
    keepalive_s: float = Field(10.0, gt=0, le=600, description="keep-alive interval")
    keepalive_count: int = Field(
        4, ge=2, le=100, description="silent keep-alive intervals before the device counts as gone"
    )

    @property
    def keepalive_window_s(self) -> float:
        """A device that stops answering is declared gone at most this long after it last spoke."""
        return self.keepalive_s * self.keepalive_count

    @field_validator("identity_file", "known_hosts", mode="after")
    @classmethod
    def _existing_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        path = cls.resolve_path(value, info)
        if path is not None and not path.is_file():
            raise ValueError(f"file {path} does not exist")
        return path

    @property
    def host_entry(self) -> str:
        """How known_hosts names this host: `host`, or `[host]:port` off port 22."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ssh://{self.user}@{host}:{self.port}"


def _quiet_asyncio_after_drops() -> None:
    """asyncio logs every write to a link that just died; the transport reports the drop once.

    asyncssh logs each channel at INFO; it speaks only from WARNING unless told otherwise.
    """
    asyncssh_log = logging.getLogger("asyncssh")
    if asyncssh_log.level == logging.NOTSET:
        asyncssh_log.setLevel(logging.WARNING)
    asyncio_log = logging.getLogger("asyncio")
    if not any(isinstance(f, _DroppedLinkFilter) for f in asyncio_log.filters):
        asyncio_log.addFilter(_DroppedLinkFilter())


class _DroppedLinkFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "socket.send() raised exception" not in record.getMessage()


def _link_drop_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A dropped link fails asyncssh's helper tasks (parallel SFTP writes) that nobody awaits;
    asyncio would print each one's traceback. The step that saw the drop already reports it."""
    if isinstance(context.get("exception"), _transient_errors()):
        log.debug("after a dropped link: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


def quote_command(argv: list[str]) -> str:
    """One shell command line whose words are exactly argv."""
    return " ".join(shlex.quote(arg) for arg in argv)


def _transient_errors() -> tuple[type[BaseException], ...]:
    import asyncssh

    return (
        asyncssh.ConnectionLost,
        asyncssh.SFTPConnectionLost,
        asyncssh.DisconnectError,
        asyncssh.ChannelOpenError,
        asyncio.TimeoutError,
        ConnectionError,
        OSError,
        EOFError,
    )


@TRANSPORTS.register("ssh")
class SshTransport(Transport):
    Device = SshDevice
    device: SshDevice

    def __init__(self, device: SshDevice) -> None:
        super().__init__(device)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: Any = None
        self._sftp: Any = None
        self._no_sftp = False  # the server refused the sftp subsystem: use exec channels

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
        """Run one coroutine on this transport's loop; connection trouble becomes transient."""
        import asyncssh

        assert self._loop is not None
        try:
            return self._loop.run_until_complete(asyncio.wait_for(coroutine, timeout))
        except (LabAccessError, LabInfrastructureError):
            raise
        except (asyncssh.HostKeyNotVerifiable, asyncssh.PermissionDenied):
            raise
        except asyncssh.SFTPError as exc:
            if isinstance(exc, asyncssh.SFTPConnectionLost):
                raise TransientLabError(f"connection lost during {what}") from None
            raise LabInfrastructureError(f"{self.uri}: {what}: {exc.reason}") from None
        except asyncio.TimeoutError:
            raise TransientLabError(f"{what} took longer than {timeout:g} s") from None
        except _transient_errors() as exc:
            raise TransientLabError(f"{what}: {type(exc).__name__}: {exc}") from None

    def _connect(self) -> None:
        try:
            import asyncssh
        except ImportError:
            raise MissingExtraError("asyncssh", "ssh", "the ssh lab transport") from None
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._loop.set_exception_handler(_link_drop_handler)
            _quiet_asyncio_after_drops()
        device = self.device
        witnesses: list[Any] = []
        keys: dict[str, Any] = {}
        if device.identity_file is not None:
            keys = {"client_keys": [str(device.identity_file)], "agent_path": None}
        connect = asyncssh.create_connection(
            _witness_factory(witnesses),
            device.host,
            device.port,
            username=device.user,
            known_hosts=str(device.known_hosts.expanduser()),
            config=None,
            connect_timeout=device.connect_timeout_s,
            login_timeout=device.connect_timeout_s,
            keepalive_interval=device.keepalive_s,
            # asyncssh drops the link when the (max + 1)th silent interval ends: so the device
            # is gone `keepalive_count` intervals after it last spoke (keepalive_window_s).
            keepalive_count_max=device.keepalive_count - 1,
            **keys,
        )
        try:
            connection, _ = self._call(connect, device.connect_timeout_s * 2, "connecting")
        except asyncssh.HostKeyNotVerifiable:
            offered = witnesses[-1].offered if witnesses else None
            raise LabAccessError(_host_key_refusal(device, offered)) from None
        except asyncssh.PermissionDenied:
            key = device.identity_file or "the ssh agent and ~/.ssh keys"
            raise LabAccessError(
                f"{self.uri}: the device refused the key ({key}) for user {device.user}; "
                f"add its public key to ~{device.user}/.ssh/authorized_keys on the device "
                f"(device {device.name}, fields user and identity_file)"
            ) from None
        except asyncssh.KeyImportError as exc:
            raise LabAccessError(
                f"device {device.name}: field identity_file {device.identity_file}: cannot use "
                f"it ({exc}); an encrypted key must be loaded into ssh-agent (then leave "
                "identity_file out)"
            ) from None
        self._connection = connection
        self._sftp = None

    def _disconnect(self) -> None:
        connection, self._connection, self._sftp = self._connection, None, None
        if connection is None or self._loop is None:
            return
        connection.close()
        try:
            self._loop.run_until_complete(asyncio.wait_for(connection.wait_closed(), 5))
        except Exception as exc:  # closing a broken connection may fail in many ways
            log.debug("%s: close: %s", self.uri, exc)

    def close(self) -> None:
        super().close()
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def _exec(self, argv: list[str], timeout: float) -> CommandResult:
        command = quote_command(argv)
        started = time.perf_counter()

        async def go() -> Any:
            process = await self._connection.create_process(
                command, encoding="utf-8", errors="replace"
            )
            process.stdin.write_eof()
            try:
                return await process.wait(check=False, timeout=timeout)
            except asyncio.TimeoutError:
                try:
                    process.send_signal("KILL")
                finally:
                    process.close()
                raise LabInfrastructureError(
                    f"{self.uri}: {argv[0]} did not finish within {timeout:g} s (killed)"
                ) from None

        completed = self._call(go(), timeout + 30, f"running {argv[0]}")
        status = completed.exit_status
        stderr = completed.stderr or ""
        if (status is None or status < 0) and not completed.exit_signal:
            raise TransientLabError(f"the link closed before {argv[0]} reported an exit status")
        if status is None or status < 0:
            stderr += f"\n(killed by signal {completed.exit_signal[0]})"
            status = 255
        return CommandResult(
            argv, status, completed.stdout or "", stderr, time.perf_counter() - started
        )

    @property
    def upload_method(self) -> str:
        if self._no_sftp:
            return EXEC_UPLOAD
        return "sftp"

    def _sftp_client(self) -> Any | None:
        """The SFTP client, or None when the server has no SFTP subsystem."""
        if self._sftp is None and not self._no_sftp:
            opened = self._call(self._open_sftp(), self.device.connect_timeout_s, "opening sftp")
            if opened is None:
                log.info("%s: no SFTP subsystem; files go over exec channels", self.uri)
                self._no_sftp = True
            self._sftp = opened
        return self._sftp

    async def _open_sftp(self) -> Any | None:
        """Start SFTP; None when the server refused the subsystem request (the link is fine)."""
        import asyncssh

        try:
            return await self._connection.start_sftp_client()
        except asyncssh.ChannelOpenError as exc:
            if exc.code == asyncssh.OPEN_REQUEST_SESSION_FAILED:  # subsystem request refused
                return None
            raise

    def _upload(self, local: Path, remote: str, timeout: float) -> None:
        sftp = self._sftp_client()
        if sftp is None:
            argv = ["sh", "-c", 'cat > "$1"', "sh", remote]
            self._stream(argv, f"uploading {local.name}", timeout, stdin=str(local))
            return
        self._call(sftp.put(str(local), remote), timeout, f"uploading {local.name}")

    def _download(self, remote: str, local: Path, timeout: float) -> None:
        sftp = self._sftp_client()
        if sftp is None:
            self._stream(["cat", "--", remote], f"downloading {remote}", timeout, stdout=str(local))
            return
        self._call(sftp.get(remote, str(local)), timeout, f"downloading {remote}")

    def _stream(self, argv: list[str], what: str, timeout: float, **redirect: str) -> None:
        """Run argv with stdin from, or stdout into, a local file (bytes, unchanged)."""
        completed = self._call(
            self._connection.run(quote_command(argv), encoding=None, check=False, **redirect),
            timeout,
            what,
        )
        if completed.exit_status is None or completed.exit_status < 0:
            raise TransientLabError(f"the link closed during {what}")
        if completed.exit_status != 0:
            stderr = completed.stderr.decode("utf-8", "replace") if completed.stderr else ""
            raise LabInfrastructureError(
                f"{self.uri}: {what} over an exec channel failed (exit status "
                f"{completed.exit_status}): {stderr.strip()[-500:] or '(no output)'}"
            )


def _witness_factory(witnesses: list[Any]) -> Any:
    """An asyncssh client factory whose clients remember the key a server offered."""
    import asyncssh

    class HostKeyWitness(asyncssh.SSHClient):
        offered: Any = None

        def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
            self.offered = key
            return False  # called only for keys known_hosts lacks: never trust them

    def factory() -> HostKeyWitness:
        witnesses.append(HostKeyWitness())
        return witnesses[-1]

    return factory


def _host_key_refusal(device: SshDevice, offered: Any) -> str:
    """Say which key was offered, whether it is unknown or changed, and how to trust it."""
    import asyncssh

    known_hosts = device.known_hosts
    where = f"device {device.name} (field known_hosts: {known_hosts})"
    if offered is None:
        return f"{device.uri}: host key not verifiable against {known_hosts}; {where}"
    algorithm = offered.get_algorithm()
    fingerprint = offered.get_fingerprint("sha256")
    key_type = algorithm.removeprefix("ssh-").split("-")[0]
    port = device.port if device.port != 22 else None
    try:
        trusted = asyncssh.match_known_hosts(str(known_hosts), device.host, device.host, port)[0]
    except (OSError, ValueError):
        trusted = []
    scan = f"ssh-keyscan -p {device.port} -t {key_type} {device.host}"
    if trusted:
        previous = ", ".join(f"{k.get_algorithm()} {k.get_fingerprint('sha256')}" for k in trusted)
        return (
            f"{device.uri}: host key CHANGED and refused. The device offered {algorithm} "
            f"{fingerprint}; {known_hosts} trusts {previous} for {device.host_entry}. A "
            "reinstalled device does this, and so does someone in the middle. If you are sure "
            "it is the device, compare the fingerprint on its console (ssh-keygen -lf "
            f"/etc/ssh/ssh_host_{key_type}_key.pub), then: ssh-keygen -R '{device.host_entry}' "
            f"-f {known_hosts} && {scan} >> {known_hosts}  ({where})"
        )
    return (
        f"{device.uri}: unknown host key refused. The device offered {algorithm} {fingerprint}, "
        f"which {known_hosts} does not list for {device.host_entry}; edgedistill never trusts "
        "a key on first use. Compare the fingerprint on the device's console (ssh-keygen -lf "
        f"/etc/ssh/ssh_host_{key_type}_key.pub); if it matches: {scan} >> {known_hosts}  "
        f"({where})"
    )
