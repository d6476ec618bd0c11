"""Checkpoints: atomic writes, a ``latest`` pointer, the last K kept, validated loads.

A checkpoint is a ``torch.save`` zip of one dict tagged with :data:`FORMAT` and
:data:`VERSION`. It is written to a temporary file in the same folder, flushed, fsynced and
renamed over its final name (then the folder is fsynced), so a crash never leaves a
truncated file under a checkpoint's name. Loading anything else (a missing, truncated,
foreign or newer file) raises :class:`rlwb.errors.CheckpointError` with a one-line reason.

Loading never runs code: files are read with ``torch.load(weights_only=True)``, which
unpickles only tensors, plain containers (dict, list, tuple), numbers, strings, bools and
None. An agent's ``state_dict()`` must therefore hold only those (no numpy arrays, no
dataclass instances); a file that needs anything else is refused with one line, so a
checkpoint from someone else cannot execute code here.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import random
import re
import zipfile
from typing import Any

import numpy as np
import torch

from rlwb.errors import CheckpointError

FORMAT = "rlwb-checkpoint"
POLICY_FORMAT = "rlwb-policy"  # policy.pt: the agent's policy_state_dict and how to rebuild it
POLICY_FILE = "policy.pt"
VERSION = 2  # 2: weights-only (tensors and plain data; version 1 held numpy arrays)
LATEST = "latest"
_NAME = re.compile(r"^step_(\d+)\.pt$")

PathLike = str | os.PathLike[str]


def checkpoint_name(env_steps: int) -> str:
    return f"step_{env_steps:012d}.pt"


def _fsync_dir(folder: pathlib.Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: PathLike, writer: Any) -> None:
    """Write a file atomically: ``writer(fileobj)`` fills a temp file that replaces ``path``."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            writer(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def save(path: PathLike, payload: dict[str, Any], kind: str = FORMAT) -> pathlib.Path:
    """Save ``payload`` (tagged with the format ``kind`` and version) atomically at ``path``."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tagged = {"format": kind, "version": VERSION, **payload}
    atomic_write_bytes(path, lambda handle: torch.save(tagged, handle))
    return path


def step_of(path: PathLike) -> int | None:
    """The env step in a checkpoint's file name (None for other names)."""
    match = _NAME.match(pathlib.Path(path).name)
    return int(match.group(1)) if match else None


def resolve(path: PathLike) -> pathlib.Path:
    """A checkpoint file from a file, a ``checkpoints/`` folder or a run folder (its latest;
    a run folder without checkpoints: its ``policy.pt``)."""
    path = pathlib.Path(path)
    if path.is_dir():
        for folder in (path, path / "checkpoints"):
            pointer = folder / LATEST
            if pointer.is_file():
                target = folder / pointer.read_text().strip()
                if not target.is_file():
                    raise CheckpointError(f"{pointer} points to a missing file {target.name}")
                return target
        if (path / POLICY_FILE).is_file():
            return path / POLICY_FILE
        raise CheckpointError(f"no checkpoint found in folder {path} (no '{LATEST}' pointer)")
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    return path


def load_tensors(path: pathlib.Path) -> Any:
    """``torch.load(weights_only=True)`` onto the CPU; anything else is one-line refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused a global: never run it
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        old = " (rlwb checkpoints before format 2 held numpy arrays)" if "numpy" in what else ""
        raise CheckpointError(
            f"{path} holds Python objects other than tensors and plain data{what}; "
            f"refusing to load it (loading could run code){old}"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} is truncated or corrupt: {reason}") from None


def load(path: PathLike, formats: tuple[str, ...] = (FORMAT,)) -> dict[str, Any]:
    """Load and validate a checkpoint, or a file of another of ``formats`` (tensors on the
    CPU)."""
    path = resolve(path)
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not an rlwb checkpoint (not a torch zip file, or truncated)"
        )
    payload = load_tensors(path)
    if not isinstance(payload, dict) or payload.get("format") not in formats:
        raise CheckpointError(f"{path} is not an rlwb checkpoint (a torch file of another kind)")
    version = payload.get("version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path} has an invalid format version {version!r}")
    if version > VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}, newer than this rlwb reads "
            f"(up to {VERSION}); upgrade rlwb"
        )
    return payload


class CheckpointManager:
    """Numbered checkpoints in one folder, a ``latest`` pointer, only the last ``keep``."""

    def __init__(self, folder: PathLike, keep: int = 3, protect: PathLike | None = None) -> None:
        self.folder = pathlib.Path(folder)
        self.keep = max(1, int(keep))
        #: never rotated away (the checkpoint a run resumed from)
        self.protect = pathlib.Path(protect).resolve() if protect is not None else None

    def existing(self) -> list[pathlib.Path]:
        """Complete checkpoints, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _NAME.match(p.name))]
        return [p for _, p in sorted(found)]

    def save(self, payload: dict[str, Any], env_steps: int) -> pathlib.Path:
        self._remove_stale_temp_files()
        path = save(self.folder / checkpoint_name(env_steps), payload)
        atomic_write_bytes(self.folder / LATEST, lambda h: h.write(f"{path.name}\n".encode()))
        for old in self.existing()[: -self.keep]:
            if old != path and old.resolve() != self.protect:
                old.unlink(missing_ok=True)
        return path

    def _remove_stale_temp_files(self) -> None:
        """Temp files of a writer killed mid-write (never under a checkpoint's name)."""
        if self.folder.is_dir():
            mine = f".tmp-{os.getpid()}"
            for path in self.folder.glob(".*.tmp-*"):
                if not path.name.endswith(mine):
                    path.unlink(missing_ok=True)

    def latest(self) -> pathlib.Path | None:
        try:
            return resolve(self.folder)
        except CheckpointError:
            return None


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Global random states (python, numpy, torch CPU and CUDA) as tensors and plain data."""
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(words), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    keys = np.asarray(keys.numpy() if isinstance(keys, torch.Tensor) else keys, dtype=np.uint32)
    np.random.set_state((kind, keys, int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
