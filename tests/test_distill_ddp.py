"""Two processes on CPU under torchrun: DistributedDataParallel over gloo, one writer."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from tests.conftest import TINY_RECIPE


def test_torchrun_two_processes_train_one_model_and_only_rank_0_writes(tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "edgedistill", "distill"]
    command += ["--task", str(TINY_RECIPE), "--student", "mbv2:d=1,r=16,w=0.25"]
    command += ["--epochs", "2", "--out", str(out), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # one document: rank 1 prints nothing
    assert document["world_size"] == 2 and document["epochs_run"] == 2
    assert json.loads((out / "result.json").read_text()) == document
    digests = dict(re.findall(r"rank (\d): student weights sha256 ([0-9a-f]+)", result.stderr))
    assert set(digests) == {"0", "1"}, result.stderr
    assert digests["0"] == digests["1"], "the ranks must end with identical weights"
    assert not list(tmp_path.glob("**/*.tmp")), "no half-written files"
