"""The saved-run format, written and read in one place: checkpoints, ``policy.pt`` and
``config.yaml`` of a run folder.

A checkpoint and ``policy.pt`` share a *header* (what rebuilds the agent and its
evaluation: agent class and config, train config, backend, engine spec, step). A checkpoint
adds everything to resume (agent and engine state, observations, RNG, counters, the last
evaluation, resumes); ``policy.pt`` adds only the policy part (:func:`policy_entry`).
``config.yaml`` is the human-readable resolved configuration. Code that reads a run
(``rlwb eval``, ``rlwb export``, experiment reports, benchmarks) goes through
:class:`SavedRun` rather than payload keys.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from dataclasses import dataclass
from typing import Any

import torch
import yaml

import rlwb
from rlwb import checkpoint as ckpt
from rlwb.agent import Agent
from rlwb.config import class_path, dump_yaml, from_dict, import_object, load_yaml, to_plain
from rlwb.engine import Engine, EngineSpec
from rlwb.errors import CheckpointError, ConfigError

CONFIG_FILE = "config.yaml"


# ---------------------------------------------------------------------- engine spec
def spec_to_dict(spec: EngineSpec) -> dict[str, Any]:
    data = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
    data = {k: v.cpu() if isinstance(v, torch.Tensor) else to_plain(v) for k, v in data.items()}
    data["device"] = str(spec.device)
    return data


def spec_from_dict(data: dict[str, Any], device: torch.device) -> EngineSpec:
    """The saved training engine's spec (:func:`spec_to_dict`'s inverse)."""
    fields = {f.name for f in dataclasses.fields(EngineSpec)}
    values = {k: v for k, v in data.items() if k in fields}
    values["observation_shape"] = tuple(values["observation_shape"])
    values["action_low"] = torch.as_tensor(values["action_low"]).to(device)
    values["action_high"] = torch.as_tensor(values["action_high"]).to(device)
    values["device"] = device
    return EngineSpec(**values)


# ---------------------------------------------------------------------- agent and policy
def overrides_policy(agent: Agent) -> bool:
    """Whether the agent keeps a smaller policy state than its full training state."""
    return type(agent).policy_state_dict is not Agent.policy_state_dict


def policy_entry(agent: Agent) -> dict[str, Any]:
    """``{"policy": policy_state_dict()}``, or ``{"agent": state_dict()}`` for an agent
    without a separate policy state (what :func:`load_policy` reads back)."""
    if overrides_policy(agent):
        return {"policy": agent.policy_state_dict()}
    return {"agent": agent.state_dict()}


def load_policy(agent: Agent, payload: dict[str, Any]) -> None:
    """Load the policy part of a checkpoint or policy file into ``agent``."""
    if "policy" in payload:
        agent.load_policy_state_dict(payload["policy"])
    elif "agent" in payload:  # an agent without a separate policy state
        agent.load_state_dict(payload["agent"])
    else:
        raise CheckpointError("saved file holds neither a policy nor an agent state")


def build_agent(payload: dict[str, Any], spec: EngineSpec, device: torch.device) -> Agent:
    """An agent of the saved class and config, built for ``spec`` (not yet loaded)."""
    try:
        agent_cls = import_object(payload["agent_class"])
        config_cls = import_object(payload["agent_config_class"])
        config = from_dict(config_cls, payload["agent_config"])
    except KeyError as exc:
        raise CheckpointError(f"saved file lacks the field {exc.args[0]!r}") from None
    except ConfigError as exc:
        raise CheckpointError(f"cannot rebuild the saved agent: {exc}") from None
    return agent_cls(config, spec, device)


def agent_from_checkpoint(payload: dict[str, Any], device: torch.device) -> Agent:
    """The checkpoint's training agent (built for the saved spec), full state loaded."""
    agent = build_agent(payload, spec_from_dict(payload["spec"], device), device)
    agent.load_state_dict(payload["agent"])
    return agent


# ---------------------------------------------------------------------- writing
def unique_dir(root: pathlib.Path, name: str) -> pathlib.Path:
    """A new folder ``root/name`` (``name-2``, ``name-3``, ... when taken)."""
    path, n = root / name, 1
    while path.exists():
        n += 1
        path = root / f"{name}-{n}"
    path.mkdir(parents=True)
    return path


def header(
    agent_cls: type[Agent],
    agent_config: Any,
    train_config: Any,
    engine: Engine,
    env_steps: int,
    step_scale: int,
) -> dict[str, Any]:
    """What rebuilds the agent and its evaluation (shared by checkpoints and policy.pt)."""
    return {
        "rlwb_version": rlwb.__version__,
        "created": time.time(),
        "experiment": train_config.experiment,
        "agent_class": class_path(agent_cls),
        "agent_config_class": class_path(agent_config),
        "agent_config": to_plain(agent_config),
        "train_config": to_plain(train_config),
        "backend": engine.backend,
        "spec": spec_to_dict(engine.spec),
        "env_steps": env_steps,
        "step_scale": step_scale,
    }


def checkpoint_payload(
    head: dict[str, Any],
    agent: Agent,
    engine: Engine,
    obs: torch.Tensor | None,
    rng: dict[str, Any],
    counters: dict[str, Any],
    eval_result: tuple[float, float, list[float]],
    resumes: list[dict[str, Any]],
) -> dict[str, Any]:
    """Everything a resumed run continues from: ``head`` (:func:`header`), agent and engine
    state, the current observations, RNG states, counters, the last evaluation, resumes."""
    payload = {
        **head,
        "agent": agent.state_dict(),
        "engine": engine.state_dict(),
        "obs": obs.cpu() if obs is not None else None,
        "rng": rng,
        "counters": counters,
        "eval": list(eval_result[:2]) + [list(eval_result[2])],
        "resumes": resumes,
    }
    if overrides_policy(agent):  # else the policy is the agent state itself
        payload.update(policy_entry(agent))
    return payload


def save_policy(run_dir: pathlib.Path, head: dict[str, Any], agent: Agent) -> pathlib.Path:
    """``policy.pt``: the policy state and how to rebuild the agent (no replay, no
    optimizer), for ``rlwb eval``."""
    payload = {**head, **policy_entry(agent)}
    return ckpt.save(run_dir / ckpt.POLICY_FILE, payload, kind=ckpt.POLICY_FORMAT)


def run_config(
    agent_cls: type[Agent],
    agent_config: Any,
    train_config: Any,
    engine: Engine,
    step_scale: int,
    resumes: list[dict[str, Any]],
) -> dict[str, Any]:
    """The content of ``config.yaml``: the full resolved configuration, and each resume."""
    spec = engine.spec
    data = {
        "experiment": train_config.experiment,
        "agent_class": class_path(agent_cls),
        "agent_config_class": class_path(agent_config),
        "train": to_plain(train_config),
        "agent": to_plain(agent_config),
        "engine": {
            "backend": engine.backend,
            "observation_shape": list(spec.observation_shape),
            "action_dim": spec.action_dim,
            "max_episode_steps": spec.max_episode_steps,
            "dt": spec.dt,
        },
        "rlwb_version": rlwb.__version__,
        "torch_version": torch.__version__,
        "step_scale": step_scale,  # TensorBoard steps = agent steps x this
    }
    if resumes:
        data["resumes"] = resumes
    return data


def write_config(run_dir: pathlib.Path, data: dict[str, Any]) -> None:
    dump_yaml(data, run_dir / CONFIG_FILE)


# ---------------------------------------------------------------------- reading
@dataclass
class SavedRun:
    """A checkpoint or ``policy.pt``, read: the run's settings and its agent, without
    reaching into payload keys. ``payload`` is the raw dict (tensors on the CPU)."""

    path: pathlib.Path
    payload: dict[str, Any]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SavedRun:
        """A run folder (its latest checkpoint, else its ``policy.pt``), a checkpoint or a
        ``policy.pt``."""
        source = ckpt.resolve(path)
        return cls(source, ckpt.load(source, formats=(ckpt.FORMAT, ckpt.POLICY_FORMAT)))

    @property
    def train(self) -> dict[str, Any]:
        """The run's train config as plain data (``TrainConfig``'s fields)."""
        return self.payload.get("train_config") or {}

    @property
    def task(self) -> str:
        return self.train["task"]

    @property
    def task_kwargs(self) -> dict[str, Any]:
        return dict(self.train.get("task_kwargs") or {})

    @property
    def backend(self) -> str:
        return self.payload["backend"]

    @property
    def eval_seed(self) -> int:
        return int(self.train["eval_seed"])

    @property
    def eval_episodes(self) -> int:
        return int(self.train.get("eval_episodes", 10))

    @property
    def eval_horizon(self) -> int | None:
        return self.train.get("eval_horizon")

    @property
    def observations(self) -> torch.Tensor | None:
        """A checkpoint's current observations of the training engine (None in a
        ``policy.pt`` or for an IterationAgent)."""
        obs = self.payload.get("obs")
        return obs if torch.is_tensor(obs) else None

    def spec(self, device: torch.device | str = "cpu") -> EngineSpec:
        """The training engine's spec, on ``device``."""
        if "spec" not in self.payload:
            raise CheckpointError(f"{self.path}: saved file lacks the engine spec")
        return spec_from_dict(self.payload["spec"], torch.device(device))

    def policy_agent(self, spec: EngineSpec, device: torch.device | str = "cpu") -> Agent:
        """The saved agent built for ``spec`` (e.g. an evaluation engine's) with its
        policy part loaded."""
        agent = build_agent(self.payload, spec, torch.device(device))
        load_policy(agent, self.payload)
        return agent


def read_config(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A run folder's ``config.yaml`` as a dict; None when it is missing, or damaged or
    edited into something that is not a mapping."""
    path = pathlib.Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        data = load_yaml(path)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None
