"""SSH to a device without an SFTP subsystem (dropbear, minimal sshd): files go over exec channels.

A real OpenSSH sshd on 127.0.0.1 whose config has no `Subsystem sftp` line: the subsystem
request is refused, as on such boards, and uploads stream into `cat` on the device, still under
a temporary name, checked by sha256 there and renamed.
"""

from __future__ import annotations

import json
import os

import pytest

from edgedistill.hashing import sha256_file
from edgedistill.lab.transports import open_transport
from edgedistill.lab.transports.ssh import EXEC_UPLOAD
from tests.conftest import run_cli
from tests.lab_fixtures import payload, running_sshd, upload_cut_mid_way


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    yield from running_sshd(tmp_path_factory, sftp=False)


def test_the_test_sshd_really_has_no_sftp_subsystem(sshd):
    import asyncio

    import asyncssh

    async def try_sftp() -> None:
        async with asyncssh.connect(
            "127.0.0.1",
            sshd.port,
            username=sshd.user,
            client_keys=[str(sshd.client_key)],
            known_hosts=str(sshd.known_hosts),
            config=None,
        ) as connection:
            await connection.start_sftp_client()

    with pytest.raises(asyncssh.ChannelOpenError):
        asyncio.run(try_sftp())


def test_push_and_pull_without_sftp_go_over_an_exec_channel_verified_by_sha256(sshd, tmp_path):
    source = payload(tmp_path, 1_500_000)
    with open_transport(sshd.entry()) as device:
        remote = device.push(source, "model.tflite")
        assert device.upload_method == EXEC_UPLOAD
        assert device.sha256(remote) == sha256_file(source)
        assert os.listdir(device.session_dir) == ["model.tflite"], "no temporary left behind"
        back = device.pull(remote, tmp_path / "back" / "model.tflite")
    assert back.read_bytes() == source.read_bytes()


def test_exec_channel_upload_cut_mid_way_is_retried_and_verified(sshd, tmp_path):
    relay, names = upload_cut_mid_way(sshd, tmp_path)
    assert relay.dropped >= 1 and relay.connections >= 2, "the upload really was cut and redone"
    assert names == ["model.onnx"]


def test_lab_check_says_files_go_over_an_exec_channel(sshd, tmp_path):
    lab = sshd.write_lab(tmp_path / "devices.yaml", sshd.device("minimal"))
    result = run_cli("lab", "check", str(lab), "--json")
    assert result.returncode == 0, result.stderr
    (device,) = json.loads(result.stdout)["devices"]
    assert device["ready"] and device["upload"] == EXEC_UPLOAD
    table = run_cli("lab", "check", str(lab))
    assert "exec channel" in table.stdout and "sha256 checked" in table.stdout
