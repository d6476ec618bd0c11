"""Resuming a run from a checkpoint, and branching.

Every setting comes from the checkpoint; only fields named explicitly (on the command line,
or passed to :func:`rlwb.train.train` with values that differ) change, and those that
cannot change (task, backend, device, seed, members, task arguments, the agent's config but
the fields it declares ``mutable_on_resume``) are refused. ``config.yaml`` lists each resume
with what changed. Resuming from a checkpoint that is not its folder's newest starts a branch
in a new run folder, so the abandoned branch's files stay as they were; the checkpoint a run
resumed from is never rotated away.
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rlwb import checkpoint as ckpt
from rlwb.agent import Agent
from rlwb.config import class_path, from_dict, same_class, to_plain
from rlwb.errors import CheckpointError, ConfigError
from rlwb.mutable import apply_mutations, mutable_fields, mutated_config
from rlwb.saved_run import read_config, unique_dir

# Fields a resumed run refuses to change: the run would no longer be the same experiment.
# (device too: agent generators and engine states are device-specific)
FIXED_ON_RESUME = ("task", "backend", "device", "num_envs", "seed", "task_kwargs")
# Fields that name where a run lives, not how it trains (never taken from a checkpoint).
PLACEMENT = ("run_dir", "run_name", "experiment")


@dataclass
class Resume:
    """Where a resumed run continues and what its checkpoint holds."""

    payload: dict[str, Any]
    source: pathlib.Path
    run_dir: pathlib.Path
    branch: bool
    history: list[dict[str, Any]]

    @property
    def step(self) -> int:
        """The step the checkpoint was written at."""
        return int(self.payload["counters"]["env_steps"])


def explicit_fields(argv: Iterable[str]) -> set[str]:
    """Dotted config fields a command line sets (``--train.total-steps 5`` ->
    ``train.total_steps``; ``--train.no-video`` -> ``train.video``)."""
    names: set[str] = set()
    for token in argv:
        if not token.startswith("--") or "." not in token:
            continue
        name = token[2:].split("=", 1)[0].replace("-", "_")
        section, _, rest = name.partition(".")
        top = rest.split(".", 1)[0]
        names.add(f"{section}.{top}")
        if top.startswith("no_"):
            names.add(f"{section}.{top[3:]}")
    return names


def resume_configs(
    saved: Any,
    saved_agent: Any,
    given: Any,
    given_agent: Any,
    explicit: set[str] | None,
) -> tuple[Any, dict[str, list[Any]]]:
    """The checkpoint's train config with the explicitly given changes, and those changes
    as ``{"train.field": [old, new]}``. ``explicit`` None: every field that differs."""

    def named(section: str, name: str) -> bool:
        return explicit is None or f"{section}.{name}" in explicit

    changes: dict[str, Any] = {}
    for f in dataclasses.fields(saved):
        old, new = getattr(saved, f.name), getattr(given, f.name)
        if f.name in PLACEMENT or not named("train", f.name) or old == new:
            continue
        if f.name in ("backend", "device", "eval_seed") and new in ("auto", None):
            continue
        changes[f.name] = new
    agent_changes = [
        f.name
        for f in dataclasses.fields(saved_agent)
        if named("agent", f.name) and getattr(saved_agent, f.name) != getattr(given_agent, f.name)
    ]
    fixed = [f"train.{k}" for k in changes if k in FIXED_ON_RESUME]
    fixed += [f"agent.{k}" for k in agent_changes if k not in mutable_fields(saved_agent)]
    if fixed:
        raise ConfigError(
            f"cannot change {', '.join(fixed)} when resuming (the checkpoint was trained with "
            "other values); start a new run instead"
        )
    old = {k: to_plain(getattr(saved, k)) for k in changes}
    recorded = {f"train.{k}": [old[k], to_plain(v)] for k, v in changes.items()}
    for k in agent_changes:  # only mutable ones are left
        old_value, new_value = getattr(saved_agent, k), getattr(given_agent, k)
        recorded[f"agent.{k}"] = [to_plain(old_value), to_plain(new_value)]
    return dataclasses.replace(saved, **changes), recorded


def locate(
    resume: str | pathlib.Path, agent_cls: type[Agent]
) -> tuple[dict[str, Any], pathlib.Path, pathlib.Path, bool]:
    """Load the checkpoint; the run folder to continue in and whether it is a new branch."""
    path = ckpt.resolve(resume)
    payload = ckpt.load(path)
    if not same_class(payload.get("agent_class"), agent_cls):
        raise CheckpointError(
            f"{path} holds a {payload.get('agent_class')} agent, not {class_path(agent_cls)}"
        )
    step = int(payload["counters"]["env_steps"])
    run_dir = path.parent.parent
    newer = [p for p in ckpt.CheckpointManager(path.parent).existing() if ckpt.step_of(p) > step]
    if not newer:
        return payload, path, run_dir, False
    # An older checkpoint: continue in a new run folder, keep the abandoned branch intact,
    # and carry its TensorBoard events up to the branch point (the writer purges the rest).
    branch = unique_dir(run_dir.parent, f"{run_dir.name}-from-{step}")
    for events in run_dir.glob("events.out.tfevents.*"):
        shutil.copy2(events, branch / events.name)
    return payload, path, branch, True


def resume_history(
    payload: dict[str, Any], run_dir: pathlib.Path, branch: bool
) -> list[dict[str, Any]]:
    """Earlier resumes: the checkpoint's, or, continuing in its own folder, the folder's
    ``config.yaml`` (which also lists resumes that wrote no checkpoint)."""
    history = list(payload.get("resumes") or [])
    if not branch:
        listed = (read_config(run_dir) or {}).get("resumes")  # a damaged file: not the record
        if isinstance(listed, list) and len(listed) > len(history):
            history = listed
    return history


def prepare(
    resume: str | pathlib.Path,
    agent_cls: type[Agent],
    agent_config: Any,
    train_config: Any,
    explicit: Iterable[str] | None,
) -> tuple[Resume, Any, Any]:
    """The checkpoint to continue from, and the train and agent configs the resumed run
    uses: the checkpoint's, with the explicit changes (see :func:`resume_configs`)."""
    payload, source, run_dir, branch = locate(resume, agent_cls)
    saved = from_dict(type(train_config), payload["train_config"])
    saved_agent = from_dict(type(agent_config), payload["agent_config"])
    names = set(explicit) if explicit is not None else None
    train_config, changed = resume_configs(saved, saved_agent, train_config, agent_config, names)
    history = resume_history(payload, run_dir, branch)
    history.append(
        {
            "at_step": int(payload["counters"]["env_steps"]),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "from": str(source),
            "branch": branch,
            "changed": changed,
        }
    )
    agent_config = mutated_config(saved_agent, agent_config, changed)
    apply_mutations(payload["agent"], agent_config, changed)
    return Resume(payload, source, run_dir, branch, history), train_config, agent_config
