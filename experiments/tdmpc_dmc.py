"""TD-MPC on DeepMind Control tasks (state observations), the authors' setting.

    python -m rlwb.experiments.tdmpc_dmc --train.task cheetah-run
    python -m rlwb.experiments.tdmpc_dmc --train.task walker-walk --train.seed 1
    python -m rlwb.experiments.tdmpc_dmc --train.task humanoid-walk --train.total-env-steps 1000000

The budget is in env steps as the paper counts them (simulator steps = agent steps x action
repeat): 500k by default, 3M for humanoid and 5M for dog. The task's domain picks the
authors' per-domain settings (``cfgs/tasks/<domain>.yaml`` of github.com/nicklashansen/tdmpc,
table ``DOMAINS``): action repeat 4, or 2 for walker, finger, humanoid and dog and 8 for
cartpole; humanoid plans with 12 iterations and a 100-d latent, dog with 8 iterations, a 100-d
latent, batch 2048 and lr 3e-4. Options given on the command line win over all of these
(``--train.task-kwargs action_repeat K``, ``--agent.iterations N``, ``--train.total-steps N``
for a budget in agent steps). 5,000 uniform random agent steps (the authors' seed_steps), then
one update per agent step; evaluation every 20k env steps, 10 episodes. TensorBoard and the
progress lines count env steps.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rlwb.agents.tdmpc.agent import TDMPC, TDMPCConfig
from rlwb.train import TrainConfig, TrainResult, run_experiment

DEFAULT_TASK = "cheetah-run"
EVAL_EVERY_ENV_STEPS = 20_000  # the authors' eval_freq
SEED_STEPS = 5_000  # agent steps of uniform random actions


@dataclass(frozen=True)
class DomainSettings:
    """What the authors' ``cfgs/tasks/<domain>.yaml`` changes from their defaults."""

    action_repeat: int = 4
    env_steps: int = 500_000
    agent: dict[str, Any] = field(default_factory=dict)


DOMAINS: dict[str, DomainSettings] = {
    "walker": DomainSettings(action_repeat=2),
    "finger": DomainSettings(action_repeat=2),
    "cartpole": DomainSettings(action_repeat=8),
    "humanoid": DomainSettings(2, 3_000_000, {"iterations": 12, "latent_dim": 100}),
    "dog": DomainSettings(
        2, 5_000_000, {"iterations": 8, "latent_dim": 100, "batch_size": 2048, "lr": 3e-4}
    ),
}


def domain_settings(task: str) -> DomainSettings:
    """The authors' settings for ``task``'s domain (``humanoid-walk`` -> humanoid)."""
    return DOMAINS.get(task.split("-", 1)[0], DomainSettings())


def train_defaults(task: str) -> TrainConfig:
    """The runner's settings for ``task`` as the authors train it."""
    domain = domain_settings(task)
    return TrainConfig(
        task=task,
        total_env_steps=domain.env_steps,
        learning_starts=SEED_STEPS,
        eval_every=EVAL_EVERY_ENV_STEPS // domain.action_repeat,
        checkpoint_every=25_000,
    )  # the action repeat joins the task arguments in Config.__post_init__


def agent_defaults(task: str) -> TDMPCConfig:
    """TD-MPC's settings for ``task``: the authors' defaults with its domain's changes."""
    return TDMPCConfig(**domain_settings(task).agent)


@dataclass
class Config:
    """The default task's settings; :func:`config_for` gives another task's."""

    train: TrainConfig = field(default_factory=lambda: train_defaults(DEFAULT_TASK))
    agent: TDMPCConfig = field(default_factory=lambda: agent_defaults(DEFAULT_TASK))

    def __post_init__(self) -> None:
        # task arguments given without an action repeat keep the domain's
        repeat = domain_settings(self.train.task).action_repeat
        self.train.task_kwargs = {"action_repeat": repeat, **self.train.task_kwargs}


def config_for(task: str) -> type[Config]:
    """A :class:`Config` whose defaults are ``task``'s: options parsed into it still win."""
    return dataclasses.make_dataclass(
        "Config",
        [
            ("train", TrainConfig, field(default_factory=lambda: train_defaults(task))),
            ("agent", TDMPCConfig, field(default_factory=lambda: agent_defaults(task))),
        ],
        bases=(Config,),
        namespace={"__module__": __name__, "__doc__": Config.__doc__},
    )


def task_in(argv: Sequence[str]) -> str:
    """The task a command line names (``--train.task X`` or ``--train.task=X``)."""
    task = DEFAULT_TASK
    for i, token in enumerate(argv):
        name, eq, value = token.partition("=")
        if name.replace("_", "-") != "--train.task":
            continue
        if eq:
            task = value
        elif i + 1 < len(argv):
            task = argv[i + 1]
    return task


def main(argv: list[str] | None = None) -> TrainResult:
    args = sys.argv[1:] if argv is None else argv
    return run_experiment(TDMPC, config_for(task_in(args)), argv, __doc__)


if __name__ == "__main__":
    main()
