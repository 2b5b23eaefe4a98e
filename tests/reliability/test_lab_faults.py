"""Lab faults: links cut mid-upload, devices that stop answering, hostile file and device names.

Everything runs against real components: a real OpenSSH sshd on 127.0.0.1 (with and without an
SFTP subsystem) behind `FaultyLink`, a TCP proxy made of real sockets that cuts, resets or
silently drops a live connection; and the adb STAND-IN of tests/standin (no phone here), which
runs device commands with /bin/sh as adbd does. The device's filesystem is this machine's, so
what arrived is judged by reading it directly, not by asking the transport.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import random
import shlex
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edgedistill.hashing import sha256_file
from edgedistill.lab.errors import LabInfrastructureError
from edgedistill.lab.transports import Transport, open_transport
from edgedistill.lab.transports._base import check_remote_name
from edgedistill.lab.transports.adb import AdbDevice
from tests.lab_fixtures import Sshd, payload, running_sshd
from tests.reliability.record import Tally

STANDIN = Path(__file__).resolve().parents[1] / "standin"
CANARY = f"edgedistill-canary-{os.getpid()}"  # a relative name: file names cannot hold '/'


# -- the faulty link --------------------------------------------------------------------------
@dataclass
class _Pair:
    client: socket.socket
    upstream: socket.socket
    budget: int | None = None  # client->server bytes left before the fault
    mode: str = "close"
    silent: bool = False  # blackholed: nothing is forwarded, the sockets stay open


class FaultyLink:
    """A TCP proxy to a local port that forwards both ways until told to fail.

    `cut_after(n, mode)`: the open connection is closed ("close") or reset ("reset") after `n`
    more client->server bytes; with `every=True` each later connection too. `go_silent()`: every
    open connection stops forwarding in both directions while its sockets stay open (a device
    that stopped answering); `heal()` lets later connections through again.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections = 0
        self.faults = 0
        self._pairs: list[_Pair] = []
        self._later: tuple[int, str] | None = None  # the fault later connections get
        self._silent_later = False
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                return
            with self._lock:
                pair = _Pair(client, upstream, silent=self._silent_later)
                if self._later is not None:
                    pair.budget, pair.mode = self._later
                self._pairs.append(pair)
                self.connections += 1
            threading.Thread(target=self._forward, args=(pair, True), daemon=True).start()
            threading.Thread(target=self._forward, args=(pair, False), daemon=True).start()

    def cut_after(self, count: int, mode: str, every: bool = False) -> None:
        with self._lock:
            for pair in self._pairs:
                pair.budget, pair.mode = count, mode
            self._later = (count, mode) if every else None

    def go_silent(self) -> None:
        with self._lock:
            for pair in self._pairs:
                pair.silent = True
            self._silent_later = True

    def heal(self) -> None:
        """Later connections, and open ones not yet cut or silenced, forward normally."""
        with self._lock:
            self._later, self._silent_later = None, False
            for pair in self._pairs:
                pair.budget = None

    def _forward(self, pair: _Pair, upstream: bool) -> None:
        source, sink = (pair.client, pair.upstream) if upstream else (pair.upstream, pair.client)
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if pair.silent:
                    continue  # swallowed: the far end never hears of it
                if upstream and pair.budget is not None:
                    if len(data) >= pair.budget:
                        sink.sendall(data[: pair.budget])
                        self._fail(pair)
                        return
                    pair.budget -= len(data)
                sink.sendall(data)
        except OSError:
            pass
        if not pair.silent:
            self._shut(pair)

    def _fail(self, pair: _Pair) -> None:
        with self._lock:
            self.faults += 1
        if pair.mode == "reset":  # RST instead of FIN: what a pulled cable's router often sends
            with contextlib.suppress(OSError):
                linger_zero = struct.pack("ii", 1, 0)
                pair.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
        self._shut(pair)

    @staticmethod
    def _shut(pair: _Pair) -> None:
        for sock in (pair.client, pair.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.silent = False
            self._shut(pair)


def within(seconds: float, action: Callable[[], object]) -> tuple[str, object, float]:
    """Run `action` in a thread: ("returned", value | "raised", exception | "hung", None, s)."""
    outcome: list[tuple[str, object]] = []

    def target() -> None:
        try:
            outcome.append(("returned", action()))
        except BaseException as exc:  # judged by the caller, whatever it is
            outcome.append(("raised", exc))

    started = time.monotonic()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    elapsed = time.monotonic() - started
    return (*outcome[0], elapsed) if outcome else ("hung", None, elapsed)


class TracebackWatch(logging.Handler):
    """Log records that carry a traceback (asyncio's "Task exception was never retrieved", an
    unhandled error in a callback): what a user would see printed after a dropped link."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "Traceback" in record.getMessage():
            self.seen.append(f"{record.name}: {record.getMessage()}")

    def __enter__(self) -> TracebackWatch:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.collect()  # a failed task nobody awaited reports itself when it is collected
        logging.getLogger().removeHandler(self)


def sha256_bytes(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def through(link: FaultyLink, sshd: Sshd, tmp_path: Path, **fields) -> dict:
    known = sshd.known_hosts_for(link.port, tmp_path / f"known_hosts-{link.port}")
    return {"port": link.port, "known_hosts": str(known), **fields}


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    yield from running_sshd(tmp_path_factory)


@pytest.fixture(scope="module")
def sshd_no_sftp(tmp_path_factory):
    yield from running_sshd(tmp_path_factory, sftp=False)


# -- cuts at a random byte of an upload -----------------------------------------------------------
UPLOAD_BYTES = 300_000
LARGE_UPLOAD_BYTES = 64_000_000  # a model the size of a TensorRT engine: cuts deep in a long push
UPLOAD_LIMIT_S = 90.0  # a case that takes longer is a hang


def cut_upload_case(
    sshd: Sshd,
    tmp_path: Path,
    rng: random.Random,
    retry_choices: tuple[int, ...],
    size: int = UPLOAD_BYTES,
) -> tuple[str, str | None]:
    """(case, why it broke or None): one upload with the link cut at a seeded random byte."""
    cut = rng.randrange(1, size)
    mode = rng.choice(["close", "reset"])
    every = rng.random() < 0.5  # every reconnect is cut too: the upload cannot get through
    retries = rng.choice(retry_choices)
    case = f"cut at byte {cut} ({mode}, {'every link' if every else 'once'}, retries {retries})"
    source = payload(tmp_path, size, f"model-{cut}.bin")
    expected = sha256_file(source)
    link = FaultyLink(sshd.port)
    entry = sshd.entry(
        **through(link, sshd, tmp_path, retries=retries, step_timeout_s=20, connect_timeout_s=5)
    )
    try:
        device = open_transport(entry)
        final = Path(device.remote_path("model.bin"))
        session = Path(device.session_dir or "")
        link.cut_after(cut, mode, every)
        how, value, seconds = within(UPLOAD_LIMIT_S, lambda: device.push(source, "model.bin"))
        link.heal()  # so that close can clean up
        if how == "hung":
            return case, f"no answer within {UPLOAD_LIMIT_S:g} s"
        if link.faults == 0:
            return case, "the link was never cut (the cut fell after the upload)"
        if how == "raised" and not isinstance(value, LabInfrastructureError):
            return case, f"raised {type(value).__name__}: {value}"
        if how == "raised" and entry.uri not in str(value):
            return case, f"the infrastructure error does not name the device: {value}"
        if how == "returned" and (value != str(final) or not final.is_file()):
            return case, f"reported {value} uploaded, but {final} is not there"
        if final.exists() and sha256_bytes(final) != expected:
            return case, f"{final} exists with the wrong sha256 ({how})"
        if how == "returned" and every and retries == 0:
            return case, "an upload cut on its only attempt was reported as done"
        device.close()
        if session.exists():
            return case, f"the run directory {session} was left on the device"
        return case, None
    finally:
        link.close()


def judge_cuts(
    sshd: Sshd,
    tmp_path: Path,
    count: int,
    seed: int,
    request,
    upload: str,
    retry_choices: tuple[int, ...] = (0, 1),
    size: int = UPLOAD_BYTES,
) -> None:
    tally = Tally(
        guarantee="An SSH link cut at any byte of an upload (over SFTP or the exec-channel "
        "fallback) ends either with the file on the device with the right sha256 or in a clean "
        "infrastructure error that names the device, never a wrong file reported as uploaded, "
        "a traceback or a hang.",
        how="A TCP proxy between the transport and a real sshd closes or resets the link after "
        "a seeded random number of client bytes inside a 300 kB push (slow: also 64 MB; once "
        "or on every reconnect, 0-2 retries); the device's file is hashed directly.",
        area="lab",
    )
    rng = random.Random(seed)
    for index in range(count):
        folder = tmp_path / f"cut-{index}"
        folder.mkdir()
        with TracebackWatch() as watch:
            case, why = cut_upload_case(sshd, folder, rng, retry_choices, size)
        if why is None and watch.seen:
            why = f"a traceback was logged: {watch.seen[0][:300]}"
        case = f"{upload}: {case}"
        if why is None:
            tally.held(case)
        else:
            tally.broke(case, why)
    tally.report(request.node.nodeid)


def test_upload_cut_at_random_bytes_over_sftp_ends_verified_or_clean(sshd, tmp_path, request):
    judge_cuts(sshd, tmp_path, 4, seed=16, request=request, upload="sftp")


def test_upload_cut_at_random_bytes_over_exec_channel_ends_verified_or_clean(
    sshd_no_sftp, tmp_path, request
):
    judge_cuts(sshd_no_sftp, tmp_path, 4, seed=17, request=request, upload="exec channel")


@pytest.mark.slow
def test_upload_cut_at_many_random_bytes_over_sftp(sshd, tmp_path, request):
    judge_cuts(sshd, tmp_path, 24, 1016, request, "sftp", retry_choices=(0, 1, 2))


@pytest.mark.slow
def test_upload_cut_at_many_random_bytes_over_exec_channel(sshd_no_sftp, tmp_path, request):
    judge_cuts(sshd_no_sftp, tmp_path, 24, 1017, request, "exec channel", (0, 1, 2))


@pytest.mark.slow
def test_large_upload_cut_at_random_bytes_over_sftp(sshd, tmp_path, request):
    """Cuts deep in a long push found run directories left on the device (fixed in close)."""
    judge_cuts(sshd, tmp_path, 12, 2016, request, "sftp, 64 MB", (0, 1, 2), LARGE_UPLOAD_BYTES)


# -- a device that stops answering ----------------------------------------------------------------
KEEPALIVE_S = 0.5
SLACK_S = 0.75  # scheduling on a busy 2-core host, and closing the dead link
IN_FLIGHT_S = 0.05  # a reply the proxy was already forwarding when the link went silent
SILENT_UPLOAD_BYTES = 64_000_000  # more than an idle host pushes in the 1.2 s before silence
NOT_FAULTED = "the step finished before the link went silent"  # a case to draw again


def silent_device_case(
    sshd: Sshd, tmp_path: Path, rng: random.Random, during: str
) -> tuple[str, str | None]:
    """(case, why it broke or None): the link goes silent mid-command or mid-upload
    (NOT_FAULTED: the step was over before the silence began, so nothing was tested)."""
    count = rng.choice([2, 3, 4])
    after = round(rng.uniform(0.2, 1.2), 2)
    case = f"silent {after} s into {during}, keep-alive {KEEPALIVE_S} s x {count}"
    link = FaultyLink(sshd.port)
    entry = sshd.entry(
        **through(
            link,
            sshd,
            tmp_path,
            keepalive_s=KEEPALIVE_S,
            keepalive_count=count,
            retries=0,
            step_timeout_s=60,
            connect_timeout_s=5,
        )
    )
    window = entry.keepalive_window_s
    source = payload(tmp_path, SILENT_UPLOAD_BYTES, "big.bin") if during == "an upload" else None
    try:
        device = open_transport(entry)

        def step() -> object:
            if source is not None:
                return device.push(source, "big.bin")
            return device.run(["sleep", "60"])

        silent_at: list[float] = []

        def go_silent() -> None:
            link.go_silent()
            silent_at.append(time.monotonic())

        silence = threading.Timer(after, go_silent)
        began = time.monotonic()
        silence.start()
        how, value, seconds = within(60, step)
        silence.cancel()
        detected = seconds - after
        link.heal()
        device.close()
        if how == "returned" and (not silent_at or began + seconds < silent_at[0] + IN_FLIGHT_S):
            return case, NOT_FAULTED
        case += f": {how} after {detected:.2f} s of silence (window {window:g} s)"
        if how == "hung":
            return case, "never detected"
        if how == "returned":
            return case, f"the step returned {value!r} although the device went silent"
        if not isinstance(value, LabInfrastructureError):
            return case, f"raised {type(value).__name__}: {value}"
        if detected > window + SLACK_S:
            return case, f"detected after {detected:.2f} s, outside the window {window:g} s"
        return case, None
    finally:
        link.close()


def judge_silence(sshd: Sshd, tmp_path: Path, plan: list[str], seed: int, request) -> None:
    tally = Tally(
        guarantee="An SSH device that stops answering mid-command or mid-upload is declared gone "
        "with a clean infrastructure error within the lab file's keep-alive window "
        "(keepalive_s x keepalive_count), and a silent but live command is not.",
        how="A TCP proxy in front of a real sshd stops forwarding (sockets kept open) at a seeded "
        "moment of `sleep 60` or a 64 MB push (a step over before the silence is drawn again); "
        "the time to the error is measured against the window plus 0.75 s of slack.",
        area="lab",
    )
    rng = random.Random(seed)
    for index, during in enumerate(plan):
        folder = tmp_path / f"silent-{index}"
        folder.mkdir()
        with TracebackWatch() as watch:
            if during == "a live silent command":
                case, why = live_silent_command_case(sshd, folder, rng)
            else:
                for draw in range(3):  # a step that ended before the silence tested nothing
                    (folder / f"draw-{draw}").mkdir()
                    case, why = silent_device_case(sshd, folder / f"draw-{draw}", rng, during)
                    if why != NOT_FAULTED:
                        break
        if why is None and watch.seen:
            why = f"a traceback was logged: {watch.seen[0][:300]}"
        if why is None:
            tally.held(case)
        else:
            tally.broke(case, why)
    tally.report(request.node.nodeid)


def live_silent_command_case(sshd: Sshd, tmp_path: Path, rng: random.Random):
    """A command that prints nothing for twice the window, on a healthy link, must finish."""
    count = rng.choice([2, 3])
    link = FaultyLink(sshd.port)
    entry = sshd.entry(
        **through(link, sshd, tmp_path, keepalive_s=KEEPALIVE_S, keepalive_count=count)
    )
    quiet = 2 * entry.keepalive_window_s
    case = f"a live command silent for {quiet:g} s, keep-alive {KEEPALIVE_S} s x {count}"
    try:
        with open_transport(entry) as device:
            how, value, _ = within(60, lambda: device.run(["sleep", f"{quiet:g}"]))
        if how != "returned" or getattr(value, "exit_status", None) != 0:
            return case, f"{how}: {value!r}"
        return case, None
    finally:
        link.close()


def test_silent_device_is_detected_within_the_keepalive_window(sshd, tmp_path, request):
    plan = ["a command", "an upload", "a live silent command"]
    judge_silence(sshd, tmp_path, plan, seed=7, request=request)


@pytest.mark.slow
def test_silent_device_is_detected_within_the_keepalive_window_many_times(sshd, tmp_path, request):
    plan = ["a command", "an upload"] * 6 + ["a live silent command"] * 2
    judge_silence(sshd, tmp_path, plan, seed=1007, request=request)


# -- hostile file and device names ----------------------------------------------------------------
FRAGMENTS = [
    " ",
    "  ",
    "'",
    '"',
    f"$(touch {CANARY})",
    f"`touch {CANARY}`",
    f"; touch {CANARY}",
    f"&& touch {CANARY}",
    f"| touch {CANARY}",
    f"\ntouch {CANARY}\n",
    f"> {CANARY}",
    f"$(touch${{IFS}}{CANARY})",  # no spaces: fits in an adb serial
    f"`touch${{IFS}}{CANARY}`",
    f";touch${{IFS}}{CANARY};",
    ";",
    "&&",
    "|",
    "&",
    "\n",
    "\r\n",
    "\t",
    "*",
    "?",
    "[a-z]",
    "{a,b}",
    "~",
    "$HOME",
    "${IFS}",
    "$((1+1))",
    "\\",
    "\\n",
    "#",
    "!!",
    "%s%n",
    "..",
    ".",
    "-",
    "--",
    "é",
    "✓",
    "日本語",
    "\u202e",
    "\x1b[31m",
    "=",
    ":",
]


def _name_strategy() -> st.SearchStrategy[str]:
    piece = st.one_of(
        st.sampled_from(FRAGMENTS),
        st.text(st.characters(codec="utf-8", exclude_characters="/\0"), min_size=1, max_size=4),
    )
    body = st.lists(piece, min_size=1, max_size=5).map("".join)
    return st.tuples(st.sampled_from(["", "-", "--", " "]), body).map("".join)


def _usable_name(name: str) -> bool:
    try:
        check_remote_name(name)
    except ValueError:
        return False
    return len(name.encode()) <= 200  # the temporary name adds ~15 bytes to it; NAME_MAX is 255


NAMES = _name_strategy().filter(_usable_name)
SERIAL_PIECES = [f for f in FRAGMENTS if not any(c.isspace() or c == "/" for c in f)]
SERIALS = st.tuples(
    st.sampled_from(["X", "é", "$", "`", ";", "'", "*", "1"]),
    st.lists(
        st.one_of(
            st.sampled_from(SERIAL_PIECES),
            st.text(
                st.characters(
                    codec="utf-8", exclude_characters="/\0", exclude_categories=["Z", "Cc"]
                ),
                max_size=3,
            ),
        ),
        max_size=4,
    ).map("".join),
).map("".join)


def side_effects_seen(*folders: Path) -> list[str]:
    """Canary files an injected command would have made, in any of the folders."""
    return [str(path) for folder in folders for path in folder.glob(f"*{CANARY}*")]


def round_trip(device: Transport, names: list[str], local_dir: Path) -> str | None:
    """Push files under `names`, list them, read and pull them back, remove them; why it broke,
    or None. Each file's content holds its name, so a swapped pair shows."""
    assert device.session_dir is not None
    contents = {name: name.encode() + os.urandom(32) for name in names}
    sources = {}
    for index, name in enumerate(names):
        sources[name] = local_dir / f"source-{index}.bin"
        sources[name].write_bytes(contents[name])
    pushed = device.push_many(sources)
    if pushed != {name: f"{device.session_dir}/{name}" for name in names}:
        return f"pushed to {pushed!r}"
    found = device.run(["find", device.session_dir, "-mindepth", "1", "-printf", "%f\\0"])
    listed = sorted(entry for entry in found.stdout.split("\0") if entry)
    if listed != sorted(names):
        return f"the device lists {listed!r}"
    for name, remote in pushed.items():
        if Path(remote).read_bytes() != contents[name]:  # the device's filesystem is this one
            return f"the device's {name!r} differs from its source"
        back = device.pull(remote, local_dir / "back" / name)  # sha256-checked on the way
        if back.read_bytes() != contents[name]:
            return f"the pulled {name!r} differs from its source"
    removed = device.run(["rm", "--", *pushed.values()])
    if removed.exit_status != 0 or os.listdir(device.session_dir):
        return f"removing them failed: {removed.stderr!r}"
    return None


def snapshot(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def draw(strategy: st.SearchStrategy, count: int) -> list:
    """`count` distinct values of a strategy, the same ones on every run (derandomized)."""
    values: list = []

    @settings(
        max_examples=count * 3,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value) -> None:
        if value not in values:
            values.append(value)

    collect()
    assert len(values) >= count, f"hypothesis made only {len(values)} distinct values"
    return values[:count]


def batches(names: list[str], size: int) -> list[list[str]]:
    return [names[start : start + size] for start in range(0, len(names), size)]


def judge_batch(tally: Tally, names: list[str], attempt: Callable[[list[str]], str | None]):
    """Count each name of a batch; a batch that breaks is retried name by name to say which."""
    why = attempt(names)
    if why is None:
        for name in names:
            tally.held(repr(name))
        return
    if len(names) == 1:
        tally.broke(repr(names[0]), why)
        return
    for name in names:
        judge_batch(tally, [name], attempt)


def guarded(attempt: Callable[[], str | None]) -> str | None:
    try:
        return attempt()
    except Exception as exc:  # judged: any exception on a valid name is a break
        return f"{type(exc).__name__}: {exc}"


def ssh_names(sshd: Sshd, tmp_path: Path, request, count: int) -> None:
    tally = Tally(
        guarantee="Hostile file names (quotes, $(), backticks, ;, &&, |, newlines, leading -, "
        "globs, unicode) travel through the ssh transport unchanged, with no side effect.",
        how="Hypothesis-made names (derandomized), 4 a batch, are pushed, listed, read back, "
        "pulled and removed on a real sshd; canary files an injection would make, and the "
        "scratch tree once the transport closed, are checked.",
        area="lab",
    )
    scratch = tmp_path / "scratch"
    workdir = scratch / "device"
    workdir.mkdir(parents=True)
    before = snapshot(scratch)
    folders = iter(tmp_path / f"local-{index}" for index in range(10**6))
    with open_transport(sshd.entry(workdir=str(workdir))) as device:

        def attempt(names: list[str]) -> str | None:
            local = next(folders)
            local.mkdir()
            why = guarded(lambda: round_trip(device, names, local))
            effects = side_effects_seen(Path.home(), Path.cwd(), scratch, workdir, tmp_path)
            return why or (f"side effect: {effects}" if effects else None)

        for batch in batches(draw(NAMES, count), 4):
            judge_batch(tally, batch, attempt)
    after = snapshot(scratch)
    if after != before:
        tally.broke("closing the transport", f"the scratch tree changed: {sorted(after ^ before)}")
    tally.report(request.node.nodeid)


def test_hostile_file_names_round_trip_through_ssh(sshd, tmp_path, request):
    ssh_names(sshd, tmp_path, request, 40)


@pytest.mark.slow
def test_many_hostile_file_names_round_trip_through_ssh(sshd, tmp_path, request):
    ssh_names(sshd, tmp_path, request, 120)


def standin_adb(folder: Path) -> Path:
    """The adb STAND-IN, started by this interpreter without site-packages: `python3` on PATH
    may be a version manager's shim that costs more than the stand-in's own work."""
    adb = folder / "adb"
    adb.write_text(
        f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -S {shlex.quote(str(STANDIN / 'adb'))} "
        '"$@"\n'
    )
    adb.chmod(0o755)
    return adb


def adb_device(serial: str, workdir: Path) -> AdbDevice:
    return AdbDevice.model_validate(
        {
            "name": "phone",
            "profile": "pixel-8",
            "transport": "adb",
            "serial": serial,
            "adb": str(standin_adb(workdir.parent)),
            "workdir": str(workdir),
            "connect_timeout_s": 10,
            "retries": 0,
        }
    )


def adb_names(tmp_path: Path, monkeypatch, request, serial_count: int) -> None:
    tally = Tally(
        guarantee="Hostile device serials and remote file names travel through the adb "
        "transport (argv to adb, quoted for the device's shell) unchanged, with no side effect.",
        how="Hypothesis-made serials, each with 3 hypothesis-made file names (derandomized), "
        "drive the adb STAND-IN (no phone: /bin/sh runs device commands as adbd does): push, "
        "list, pull, remove; every adb call must carry the serial unchanged, the workdir must "
        "be left empty and no canary file may appear.",
        area="lab",
    )
    state = tmp_path / "adb-state"
    state.mkdir()
    monkeypatch.setenv("EDGEDISTILL_STANDIN_ADB", str(state))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    folders = iter(tmp_path / f"local-{index}" for index in range(10**6))
    names = draw(NAMES, serial_count * 3)

    def attempt(serial: str, batch: list[str]) -> str | None:
        try:
            device = adb_device(serial, scratch)
        except ValidationError as exc:
            return f"the lab file refuses the serial: {exc.errors()[0]['msg']}"
        (state / f"{serial}.state").write_text("device")
        log = state / "calls.log"
        log.write_text("")
        local = next(folders)
        local.mkdir()

        def go() -> str | None:
            with open_transport(device) as transport:
                return round_trip(transport, batch, local)

        why = guarded(go)
        (state / f"{serial}.state").unlink()
        serials = {json.loads(line)[1] for line in log.read_text().splitlines()}
        if why is None and serials != {serial}:
            why = f"adb was called with the serials {serials!r}"
        if why is None and os.listdir(scratch):
            why = f"left {os.listdir(scratch)!r} in the workdir"
        effects = side_effects_seen(Path.home(), Path.cwd(), scratch, state, tmp_path)
        return why or (f"side effect: {effects}" if effects else None)

    for index, serial in enumerate(draw(SERIALS, serial_count)):
        batch = names[index * 3 : index * 3 + 3]
        why = attempt(serial, batch)
        if why is None:
            tally.held(f"serial {serial!r}")
            judge_batch(tally, batch, lambda _names: None)
        else:  # which was it: the serial with a plain name, then each name with a plain serial
            serial_why = attempt(serial, ["plain"])
            if serial_why is None:
                tally.held(f"serial {serial!r}")
            else:
                tally.broke(f"serial {serial!r}", serial_why)
            judge_batch(tally, batch, lambda names: attempt("PLAIN0001", names))
    tally.report(request.node.nodeid)


def test_hostile_serials_and_file_names_round_trip_through_standin_adb(
    tmp_path, monkeypatch, request
):
    adb_names(tmp_path, monkeypatch, request, 10)


@pytest.mark.slow
def test_many_hostile_serials_and_file_names_round_trip_through_standin_adb(
    tmp_path, monkeypatch, request
):
    adb_names(tmp_path, monkeypatch, request, 100)


def test_a_transport_opened_for_a_with_block_leaves_no_run_directory_behind(sshd, tmp_path):
    """Regression: `with open_transport(device)` opened the device a second time, and the
    first run directory stayed on the device after close."""
    workdir = tmp_path / "device"
    workdir.mkdir()
    with open_transport(sshd.entry(workdir=str(workdir))) as device:
        assert os.listdir(workdir) == [Path(device.session_dir or "").name]
    assert os.listdir(workdir) == []


def test_standin_adb_command_output_keeps_its_carriage_returns(tmp_path, monkeypatch):
    """Regression: adb output was read with universal newlines (every \\r and \\r\\n became \\n)
    and then stripped of \\r\\n again, so a file name holding them was listed changed."""
    state = tmp_path / "adb-state"
    state.mkdir()
    (state / "STANDIN0001.state").write_text("device")
    monkeypatch.setenv("EDGEDISTILL_STANDIN_ADB", str(state))
    workdir = tmp_path / "phone"
    workdir.mkdir()
    with open_transport(adb_device("STANDIN0001", workdir)) as device:
        result = device.run(["printf", "a\\r\\nb\\rc\\r"])
    assert (result.exit_status, result.stdout) == (0, "a\r\nb\rc\r")
