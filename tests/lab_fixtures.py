"""Test helpers for the lab: a real OpenSSH sshd on 127.0.0.1 and a TCP relay that drops links.

The sshd runs with a host key and a client key generated for the run; known_hosts is written from
the host key's public half (never learned from the server). Tests import the fixtures they need.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from edgedistill.hashing import sha256_file
from edgedistill.lab.transports import open_transport
from edgedistill.lab.transports.ssh import SshDevice

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgedistill-test", "-f", str(path)],
        check=True,
    )
    return path


def fingerprint(public_key: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(public_key)], capture_output=True, text=True)
    return out.stdout.split()[1]  # "256 SHA256:... comment (ED25519)"


def wait_for_port(port: int, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class Sshd:
    root: Path
    port: int
    user: str
    host_key: Path
    client_key: Path
    known_hosts: Path
    process: subprocess.Popen | None = None
    extra_devices: list[dict] = field(default_factory=list)

    @property
    def host_fingerprint(self) -> str:
        return fingerprint(self.host_key.with_suffix(".pub"))

    def device(self, name: str = "loopback", **overrides) -> dict:
        """A lab-file entry for this sshd, with this venv's python as the device's python."""
        entry = {
            "name": name,
            "profile": "host-cpu",
            "transport": "ssh",
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "identity_file": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            "workdir": str(self.root / "device-work"),
            "python": sys.executable,
            "connect_timeout_s": 10,
            "step_timeout_s": 120,
            "keepalive_s": 2,
        }
        entry.update(overrides)
        return entry

    def known_hosts_for(self, port: int, path: Path) -> Path:
        """A known_hosts file trusting this sshd's host key at another port (a relay's)."""
        path.write_text(f"[127.0.0.1]:{port} {self.host_key.with_suffix('.pub').read_text()}")
        return path

    def write_lab(self, path: Path, *devices: dict) -> Path:
        path.write_text(yaml.safe_dump({"devices": list(devices) or [self.device()]}))
        return path

    def entry(self, **overrides) -> SshDevice:
        """The validated SshDevice for this sshd."""
        return SshDevice.model_validate(self.device(**overrides))


def start_sshd(root: Path, sftp: bool = True) -> Sshd:
    """A real sshd on 127.0.0.1; `sftp=False` leaves out the SFTP subsystem (as on dropbear or a
    minimal board image), so files must travel over exec channels."""
    sshd = next((path for path in SSHD_CANDIDATES if Path(path).exists()), shutil.which("sshd"))
    if sshd is None or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server not installed (apt-get install openssh-server; .ci/run does)")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    root.mkdir(parents=True, exist_ok=True)
    (root / "device-work").mkdir(exist_ok=True)
    host_key = keygen(root / "host_key")
    client_key = keygen(root / "client_key")
    authorized = root / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    port = free_port()
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized}",
                f"PidFile {root / 'sshd.pid'}",
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                f"AllowUsers {getpass.getuser()}",
                "UseDNS no",
                "PrintMotd no",
                "MaxSessions 50",
                "MaxStartups 50",
                "LogLevel ERROR",
                *(["Subsystem sftp internal-sftp"] if sftp else []),
                "",
            ]
        )
    )
    known_hosts = root / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key.with_suffix('.pub').read_text()}")
    log = (root / "sshd.log").open("w")
    process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    try:
        wait_for_port(port)
    except RuntimeError:
        process.kill()
        raise RuntimeError(f"sshd did not start: {(root / 'sshd.log').read_text()}") from None
    return Sshd(root, port, getpass.getuser(), host_key, client_key, known_hosts, process)


def running_sshd(tmp_path_factory, sftp: bool = True):
    """Generator for a module fixture: `yield from running_sshd(tmp_path_factory)`."""
    server = start_sshd(tmp_path_factory.mktemp("sshd" if sftp else "sshd-no-sftp"), sftp)
    yield server
    assert server.process is not None
    server.process.terminate()
    server.process.wait(timeout=10)


class DroppingRelay:
    """A TCP relay between the client and sshd that cuts links on purpose.

    `drop_after` bytes sent upstream on a connection cut it, for the first `drop_first`
    connections (None: every connection). `cut_all()` cuts every open connection now.
    """

    def __init__(self, target_port: int, drop_after: int | None, drop_first: int | None) -> None:
        self.target_port = target_port
        self.drop_after = drop_after
        self.drop_first = drop_first
        self.connections = 0
        self.dropped = 0
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                index = self.connections
                self.connections += 1
                self._open += [client, upstream]
            doomed = self.drop_first is None or index < self.drop_first
            limit = self.drop_after if doomed else None
            threading.Thread(target=self._pump, args=(client, upstream, limit), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
                sent += len(data)
                if limit is not None and sent >= limit:
                    with self._lock:
                        self.dropped += 1
                    break
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut_all(self) -> None:
        with self._lock:
            sockets, self._open = self._open, []
            self.dropped += len(sockets) // 2
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()
        self.cut_all()


def tiny_onnx(path: Path, seed: int = 0) -> Path:
    """A 1x1x8x8 -> 10 logits linear model built with onnx.helper (no torch, instant)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.standard_normal((64, 10)).astype(np.float32), "weight")
    bias = numpy_helper.from_array(rng.standard_normal(10).astype(np.float32), "bias")
    shape = numpy_helper.from_array(np.array([1, 64], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["input", "shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weight"], ["product"]),
            helper.make_node("Add", ["product", "bias"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        initializer=[weight, bias, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# Strings a shell would act on, if any of them ever reached one unquoted.
HOSTILE_SEEDS = [
    "$(touch {canary})",
    "`touch {canary}`",
    "; touch {canary}",
    "' ; touch {canary} ; '",
    '" ; touch {canary} ; "',
    "\ntouch {canary}\n",
    "| touch {canary}",
    "&& touch {canary}",
    "& touch {canary} &",
    "> {canary}",
    "-rf",
    "--help",
    "-",
    "--",
    "a b  c",
    "*",
    "?",
    "[a-z]*",
    "~",
    "~root",
    "$HOME",
    "${IFS}",
    "$((1+1))",
    "\\",
    "'",
    '"',
    "\t",
    "!!",
    "#comment",
    "héllo wörld ✓",
]


def hostile_strings(canary: str) -> list[str]:
    seeds = [seed.replace("{canary}", canary) for seed in HOSTILE_SEEDS]
    decorated = [f"-{seed}" for seed in seeds] + [f"x{seed}y" for seed in seeds]
    decorated += [f"{a}{b}" for a, b in zip(seeds, reversed(seeds), strict=True)]
    strings = list(dict.fromkeys(seeds + decorated))[:100]
    assert len(strings) == 100
    return strings


def payload(tmp_path: Path, size: int, name: str = "payload.bin") -> Path:
    """`size` random bytes in a file: something to upload."""
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path


def upload_cut_mid_way(sshd: Sshd, tmp_path: Path) -> tuple[DroppingRelay, list[str]]:
    """Push 2 MB through a relay that drops the first connection after 400 kB; the upload must
    still arrive intact. (relay, files left in the device's session folder)."""
    relay = DroppingRelay(sshd.port, drop_after=400_000, drop_first=1)
    known = sshd.known_hosts_for(relay.port, tmp_path / "known_hosts")
    source = payload(tmp_path, 2_000_000)
    try:
        with open_transport(sshd.entry(port=relay.port, known_hosts=str(known))) as device:
            remote = device.push(source, "model.onnx")
            assert device.sha256(remote) == sha256_file(source)
            names = os.listdir(device.session_dir)
    finally:
        relay.close()
    return relay, names


def runaway_onnx(path: Path, input_shape: tuple[int, ...]) -> Path:
    """A valid ONNX model that never finishes: a Loop of 2**62 iterations around its input."""
    import onnx
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Identity", ["carried_in"], ["carried_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("carried_in", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("carried_out", TensorProto.FLOAT, None),
        ],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Loop", ["trips", "keep_going", "input"], ["looped"], body=body),
            helper.make_node("Flatten", ["looped"], ["flat"]),
            helper.make_node("ReduceMean", ["flat"], ["logits"], keepdims=1),
        ],
        "runaway",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1])],
        initializer=[
            helper.make_tensor("trips", TensorProto.INT64, [], [2**62]),
            helper.make_tensor("keep_going", TensorProto.BOOL, [], [True]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def manifest_fields(bundle: Path) -> dict:
    """A bundle's manifest fields, ready for write_manifest to rewrite it over the files as
    they are now (new hashes included): what swapping a file and its manifest together does."""
    fields = json.loads((bundle / "manifest.json").read_text("utf-8"))
    del fields["files"], fields["schema_version"]
    fields["artifacts"] = [
        {k: v for k, v in a.items() if k != "sha256"} for a in fields["artifacts"]
    ]
    return fields
