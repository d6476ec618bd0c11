"""Checkpoint files: atomic writes, the latest pointer, rotation, and clear load errors."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import pytest
import torch

from rlwb import checkpoint as ckpt
from rlwb.errors import CheckpointError
from tests.helpers import subprocess_env


def _payload(n: int = 1000) -> dict:
    return {"agent": {"w": torch.arange(n, dtype=torch.float32)}, "counters": {"env_steps": n}}


def test_roundtrip_latest_pointer_and_rotation(tmp_path):
    manager = ckpt.CheckpointManager(tmp_path / "checkpoints", keep=2)
    for step in (100, 200, 300):
        manager.save(_payload(step), step)
    names = [p.name for p in manager.existing()]
    assert names == [ckpt.checkpoint_name(200), ckpt.checkpoint_name(300)]
    assert manager.latest().name == ckpt.checkpoint_name(300)
    for where in (tmp_path, tmp_path / "checkpoints", manager.latest()):
        loaded = ckpt.load(where)
        assert loaded["format"] == ckpt.FORMAT and loaded["version"] == ckpt.VERSION
        assert torch.equal(loaded["agent"]["w"], torch.arange(300, dtype=torch.float32))
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if ".tmp" in p.name]


def test_failed_write_leaves_no_file_under_the_name(tmp_path, monkeypatch):
    path = tmp_path / "step.pt"
    ckpt.save(path, _payload(10))
    before = path.read_bytes()

    def broken_save(obj, handle, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])  # half a file, then fail
        raise OSError("disk full")

    real_save = torch.save
    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save(path, _payload(20))
    monkeypatch.undo()
    assert path.read_bytes() == before  # the previous checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step.pt"]  # no temp file left
    assert ckpt.load(path)["counters"]["env_steps"] == 10


def test_kill_during_writes_never_leaves_a_truncated_checkpoint(tmp_path):
    """SIGKILL a process that writes 16 MB checkpoints in a loop: whatever exists loads."""
    script = textwrap.dedent(
        f"""
        import torch
        from rlwb import checkpoint as ckpt
        manager = ckpt.CheckpointManager({str(tmp_path)!r}, keep=1000)
        big = torch.randn(4_000_000)
        for step in range(1, 10_000):
            manager.save({{"agent": {{"w": big + step}}}}, step)
            print(step, flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=subprocess_env()
    )
    try:
        for _ in range(3):  # let a few complete, then kill mid-write
            assert proc.stdout.readline(), "writer died early"
        time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    saved = ckpt.CheckpointManager(tmp_path).existing()
    assert len(saved) >= 3
    for path in saved:
        step = int(path.stem.split("_")[1])
        w = ckpt.load(path)["agent"]["w"]
        assert (
            w.shape == (4_000_000,)
            and float(w[0] - w[1]) != 0
            and float(w.mean()) == pytest.approx(step, abs=0.01)
        )
    assert ckpt.load(tmp_path)["agent"]["w"].shape == (4_000_000,)  # the latest pointer is valid
    manager = ckpt.CheckpointManager(tmp_path, keep=1000)
    manager.save(_payload(5), 99_999)  # a resumed writer clears a killed writer's temp file
    assert not list(tmp_path.glob(".*"))


def test_truncated_foreign_newer_and_missing_checkpoints_raise_checkpoint_error(tmp_path):
    good = ckpt.save(tmp_path / "good.pt", _payload())
    data = good.read_bytes()
    cases = {
        "truncated.pt": data[: len(data) // 2],
        "tail_cut.pt": data[:-200],
        "text.pt": b"hello, this is not a checkpoint\n",
        "empty.pt": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    torch.save({"model": torch.zeros(3)}, tmp_path / "foreign_torch.pt")
    with zipfile.ZipFile(tmp_path / "foreign.zip", "w") as archive:
        archive.writestr("data.txt", "not torch")
    torch.save({"format": ckpt.FORMAT, "version": ckpt.VERSION + 1}, tmp_path / "newer.pt")
    expectations = {
        "truncated.pt": "truncated|not an rlwb checkpoint",
        "tail_cut.pt": "truncated|not an rlwb checkpoint",
        "text.pt": "not an rlwb checkpoint",
        "empty.pt": "not an rlwb checkpoint",
        "foreign_torch.pt": "not an rlwb checkpoint",
        "foreign.zip": "truncated or corrupt|not an rlwb checkpoint",
        "newer.pt": "newer than this rlwb reads",
        "missing.pt": "no checkpoint at",
    }
    for name, pattern in expectations.items():
        with pytest.raises(CheckpointError, match=pattern) as info:
            ckpt.load(tmp_path / name)
        assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="no checkpoint found in folder"):
        ckpt.load(tmp_path)
