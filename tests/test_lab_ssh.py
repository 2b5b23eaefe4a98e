"""The SSH transport against a real OpenSSH sshd on 127.0.0.1 (keys made for this run)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from edgedistill.hashing import sha256_file
from edgedistill.lab.errors import LabAccessError, LabInfrastructureError
from edgedistill.lab.transports import open_transport
from tests.lab_fixtures import (
    DroppingRelay,
    hostile_strings,
    keygen,
    payload,
    running_sshd,
    upload_cut_mid_way,
)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    yield from running_sshd(tmp_path_factory)


def test_push_run_pull_round_trip_is_verified_by_sha256(sshd, tmp_path):
    source = payload(tmp_path, 300_000)
    with open_transport(sshd.entry()) as device:
        remote = device.push(source, "model.bin")
        assert remote == f"{device.session_dir}/model.bin"
        assert device.sha256(remote) == sha256_file(source)
        listing = device.run(
            [
                device.python,
                "-c",
                "import os,sys; print(os.listdir(sys.argv[1]))",
                device.session_dir,
            ],
            idempotent=True,
        )
        assert listing.exit_status == 0
        assert eval(listing.stdout) == ["model.bin"]  # no temporary names left behind
        pulled = device.pull(remote, tmp_path / "back" / "model.bin")
        session = Path(device.session_dir)
    assert sha256_file(pulled) == sha256_file(source)
    assert not session.exists(), "the run directory on the device is removed on close"


def test_run_reports_exit_status_and_both_streams(sshd):
    with open_transport(sshd.entry()) as device:
        result = device.run(["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (result.exit_status, result.stdout, result.stderr) == (7, "out\n", "err\n")


def test_lab_file_environment_reaches_the_device(sshd):
    with open_transport(sshd.entry(env={"EDGEDISTILL_PROBE": "a b;$(x)"})) as device:
        result = device.run(["sh", "-c", 'printf %s "$EDGEDISTILL_PROBE"'])
    assert result.stdout == "a b;$(x)"


def test_unknown_host_key_is_refused_with_its_fingerprint(sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(LabAccessError) as refused:
        open_transport(sshd.entry(known_hosts=str(empty)))
    message = str(refused.value)
    assert "unknown host key refused" in message
    assert sshd.host_fingerprint in message
    assert f"ssh-keyscan -p {sshd.port} -t ed25519 127.0.0.1 >> {empty}" in message
    assert empty.read_text() == "", "a refused key is never written to known_hosts"


def test_changed_host_key_is_refused_naming_both_keys(sshd, tmp_path):
    impostor = keygen(tmp_path / "other_host_key")
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {impostor.with_suffix('.pub').read_text()}")
    with pytest.raises(LabAccessError) as refused:
        open_transport(sshd.entry(known_hosts=str(known)))
    message = str(refused.value)
    assert "host key CHANGED" in message
    assert sshd.host_fingerprint in message
    from tests.lab_fixtures import fingerprint

    assert fingerprint(impostor.with_suffix(".pub")) in message
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in message


def test_wrong_client_key_is_refused_naming_the_identity_file(sshd, tmp_path):
    stranger = keygen(tmp_path / "stranger")
    with pytest.raises(LabAccessError, match="refused the key .*stranger"):
        open_transport(sshd.entry(identity_file=str(stranger)))


def test_connection_dropped_mid_upload_is_retried_and_verified(sshd, tmp_path):
    relay, names = upload_cut_mid_way(sshd, tmp_path)
    assert relay.dropped >= 1 and relay.connections >= 2, "the upload really was cut and redone"
    assert names == ["model.onnx"], "the cut attempt's temporary file does not survive"


def test_upload_cut_on_every_attempt_fails_cleanly_leaving_no_final_file(sshd, tmp_path):
    relay = DroppingRelay(sshd.port, drop_after=400_000, drop_first=None)
    known = sshd.known_hosts_for(relay.port, tmp_path / "known_hosts")
    source = payload(tmp_path, 2_000_000)
    entry = sshd.entry(port=relay.port, known_hosts=str(known), retries=1)
    device = open_transport(entry)
    final = Path(device.remote_path("model.onnx"))
    try:
        with pytest.raises(
            LabInfrastructureError, match="uploading model.onnx failed after 2 attempt"
        ):
            device.push(source, "model.onnx")
        assert not final.exists()
    finally:
        device.close()
        relay.close()
    assert not final.exists()


def test_close_cleans_up_over_a_fresh_connection_when_the_link_died_unnoticed(sshd, tmp_path):
    """A step can fail without a transient error (an SFTP failure status from a dying link)
    and leave a dead link marked connected; close must still remove the run directory."""
    relay = DroppingRelay(sshd.port, drop_after=None, drop_first=None)
    known = sshd.known_hosts_for(relay.port, tmp_path / "known_hosts")
    device = open_transport(sshd.entry(port=relay.port, known_hosts=str(known)))
    try:
        device.push(payload(tmp_path, 1000), "model.bin")
        session = Path(device.session_dir)
        assert session.is_dir()
        relay.cut_all()  # the transport is not told: it still holds the dead connection
        time.sleep(0.2)
    finally:
        device.close()
        relay.close()
    assert relay.connections == 2, "close connected once more"
    assert not session.exists(), "the run directory on the device is removed on close"


def test_run_cut_off_mid_way_is_an_infrastructure_failure_not_retried(sshd, tmp_path):
    relay = DroppingRelay(sshd.port, drop_after=None, drop_first=None)
    known = sshd.known_hosts_for(relay.port, tmp_path / "known_hosts")
    counter = tmp_path / "runs.txt"
    device = open_transport(sshd.entry(port=relay.port, known_hosts=str(known)))
    timer = threading.Timer(1.5, relay.cut_all)
    try:
        timer.start()
        started = time.monotonic()
        with pytest.raises(LabInfrastructureError, match="cut off.*not repeated"):
            device.run(["sh", "-c", 'echo run >> "$1"; sleep 20', "sh", str(counter)])
        assert time.monotonic() - started < 15
    finally:
        timer.cancel()
        device.close()
        relay.close()
    assert counter.read_text() == "run\n", "a cut run is never started a second time"


def test_step_timeout_kills_the_remote_command(sshd):
    with open_transport(sshd.entry()) as device:
        started = time.monotonic()
        with pytest.raises(LabInfrastructureError, match="did not finish within 1 s"):
            device.run(["sleep", "30"], timeout=1)
        assert time.monotonic() - started < 10
        assert device.run(["true"]).exit_status == 0, "the connection stays usable"


def test_hostile_arguments_reach_the_device_unchanged(sshd, tmp_path):
    canary = tmp_path / "canary"
    hostile = hostile_strings(str(canary))
    echo = "import json, sys; print(json.dumps(sys.argv[1:]))"
    with open_transport(sshd.entry()) as device:
        result = device.run([device.python, "-c", echo, *hostile])
    assert result.exit_status == 0, result.stderr
    assert json.loads(result.stdout) == hostile
    assert not canary.exists(), "no hostile argument was ever run as a command"


def test_hostile_file_names_arrive_unchanged_with_no_side_effect(sshd, tmp_path):
    canary = f"canary-{os.getpid()}-{time.monotonic_ns()}"  # relative: names cannot hold '/'
    names = hostile_strings(canary)
    source = payload(tmp_path, 64)
    with open_transport(sshd.entry()) as device:
        pushed = device.push_many(dict.fromkeys(names, source))
        assert pushed == {name: f"{device.session_dir}/{name}" for name in names}
        listed = device.run(
            [
                device.python,
                "-c",
                "import json,os,sys; print(json.dumps(os.listdir(sys.argv[1])))",
                device.session_dir,
            ]
        )
        home = device.run(["sh", "-c", 'echo "$HOME"']).stdout.strip()
    assert sorted(json.loads(listed.stdout)) == sorted(names)
    assert not (Path(home) / canary).exists() and not (tmp_path / canary).exists()
