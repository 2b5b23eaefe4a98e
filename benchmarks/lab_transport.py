"""Measure what the lab costs and whether the device runner agrees with the host's own timing.

Run: .venv/bin/python benchmarks/lab_transport.py [--lab devices.yaml --target NAME]
                                                 [--mb 20] [--repeat 20]

Without --lab it starts a throwaway OpenSSH sshd on 127.0.0.1 (as the tests do; needs
openssh-server) and uses this machine as the device. Prints: connect + run-directory setup,
a no-op command's round trip, verified upload throughput (SFTP + sha256 on the device +
rename), the close (directory removal), and for a tiny ONNX model the runner's p50 on the
device beside onnxruntime's p50 in this process (on a loopback lab both run on this CPU, so
they should agree within noise).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lab", type=Path)
    parser.add_argument("--target")
    parser.add_argument("--mb", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    from edgedistill.lab.host_bench import BenchProtocol, measure_onnx
    from edgedistill.lab.inventory import load_lab
    from edgedistill.lab.measure import measure_on_lab
    from edgedistill.lab.transports import open_transport
    from tests.lab_fixtures import start_sshd, tiny_onnx

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        server = None
        if args.lab:
            device = load_lab(args.lab).select([args.target])[0]
        else:
            server = start_sshd(root / "sshd")
            device = server.entry()
        try:
            started = time.perf_counter()
            transport = open_transport(device)
            opened = time.perf_counter() - started
            round_trips = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                transport.run(["true"])
                round_trips.append((time.perf_counter() - t0) * 1000)
            payload = root / "payload.bin"
            payload.write_bytes(os.urandom(args.mb * 2**20))
            t0 = time.perf_counter()
            transport.push(payload, "payload.bin")
            upload_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            transport.close()
            closed = time.perf_counter() - t0

            model = tiny_onnx(root / "tiny.onnx")
            protocol = BenchProtocol()
            (on_device,) = measure_on_lab([device], [model], protocol, strict=False)[device.name]
            in_process = measure_onnx(model, protocol)
        finally:
            if server is not None and server.process is not None:
                server.process.terminate()

    print(
        f"machine      {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}"
    )
    print(f"device       {device.uri} ({device.transport}, profile {device.profile})")
    print(f"connect+open {opened:.3f} s")
    print(
        f"run (no-op)  p50 {statistics.median(round_trips):.1f} ms, max "
        f"{max(round_trips):.1f} ms over {args.repeat}"
    )
    print(
        f"push         {args.mb} MiB in {upload_s:.2f} s = {args.mb / upload_s:.1f} MiB/s "
        "(sftp, sha256 on the device, rename)"
    )
    print(f"close        {closed:.3f} s (run directory removed)")
    print(
        f"tiny model   runner on the device p50 {on_device.p50 * 1000:.2f} us "
        f"({on_device.runs} runs, {on_device.validity}, audit {on_device.audit}); "
        f"in-process p50 {in_process.p50 * 1000:.2f} us ({in_process.runs} runs)"
    )


if __name__ == "__main__":
    main()
