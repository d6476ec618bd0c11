"""TD-MPC on DeepMind Control tasks, from states or pixels, the authors' setting.

    python -m rlwb.experiments.tdmpc_dmc --train.task cheetah-run
    python -m rlwb.experiments.tdmpc_dmc --train.task walker-walk --train.seed 1
    python -m rlwb.experiments.tdmpc_dmc --train.task humanoid-walk --train.total-env-steps 1000000
    rlwb train tdmpc_dmc --train.task cartpole-swingup --train.task-kwargs observation pixels

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

From pixels (``--train.task-kwargs observation pixels``), the authors' ``cfgs/pixels.yaml``
joins in under the domain's settings: 84 x 84 images, 3 stacked frames, a 100k env-step
budget, 8 planning iterations; TD-MPC then builds its conv encoder (32 channels) and
random-shift augmentation (pad 4) from the image observation space, and its replay keeps
each frame once.
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


# the authors' cfgs/pixels.yaml: engine options, budget and agent settings
PIXEL_OPTIONS: dict[str, Any] = {"image_size": 84, "frame_stack": 3}
PIXEL_ENV_STEPS = 100_000
PIXEL_AGENT: dict[str, Any] = {"iterations": 8, "num_channels": 32}


def train_defaults(task: str, pixels: bool = False) -> TrainConfig:
    """The runner's settings for ``task`` as the authors train it (from pixels: their
    pixel budget unless the domain sets its own)."""
    domain = domain_settings(task)
    steps = domain.env_steps
    if pixels and steps == DomainSettings().env_steps:
        steps = PIXEL_ENV_STEPS
    return TrainConfig(
        task=task,
        total_env_steps=steps,
        learning_starts=SEED_STEPS,
        eval_every=EVAL_EVERY_ENV_STEPS // domain.action_repeat,
        checkpoint_every=25_000,
    )  # the action repeat joins the task arguments in Config.__post_init__


def agent_defaults(task: str, pixels: bool = False) -> TDMPCConfig:
    """TD-MPC's settings for ``task``: the authors' defaults with their pixel changes (from
    pixels) and then the domain's, in the order the authors merge them."""
    return TDMPCConfig(**{**(PIXEL_AGENT if pixels else {}), **domain_settings(task).agent})


@dataclass
class Config:
    """The default task's settings; :func:`config_for` gives another task's."""

    train: TrainConfig = field(default_factory=lambda: train_defaults(DEFAULT_TASK))
    agent: TDMPCConfig = field(default_factory=lambda: agent_defaults(DEFAULT_TASK))

    def __post_init__(self) -> None:
        # task arguments given without an action repeat keep the domain's
        repeat = domain_settings(self.train.task).action_repeat
        kwargs = {"action_repeat": repeat, **self.train.task_kwargs}
        if kwargs.get("observation") in ("pixels", "both"):
            kwargs = {**PIXEL_OPTIONS, **kwargs}
        self.train.task_kwargs = kwargs


def config_for(task: str, pixels: bool = False) -> type[Config]:
    """A :class:`Config` whose defaults are ``task``'s (from pixels or states): options
    parsed into it still win."""
    return dataclasses.make_dataclass(
        "Config",
        [
            ("train", TrainConfig, field(default_factory=lambda: train_defaults(task, pixels))),
            ("agent", TDMPCConfig, field(default_factory=lambda: agent_defaults(task, pixels))),
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


def pixels_in(argv: Sequence[str]) -> bool:
    """Whether a command line's ``--train.task-kwargs`` asks for pixel observations
    (``observation pixels`` or ``observation both``)."""
    for i, token in enumerate(argv):
        if token.replace("_", "-") != "--train.task-kwargs":
            continue
        values = []
        for value in argv[i + 1 :]:
            if value.startswith("--"):
                break
            values.append(value)
        pairs = dict(zip(values[::2], values[1::2], strict=False))
        if pairs.get("observation") in ("pixels", "both"):
            return True
    return False


def cli_choice(argv: Sequence[str]) -> tuple[str, bool]:
    """The task and whether pixels are asked for: what picks the defaults."""
    return task_in(argv), pixels_in(argv)


def main(argv: list[str] | None = None) -> TrainResult:
    args = sys.argv[1:] if argv is None else argv
    return run_experiment(TDMPC, config_for(*cli_choice(args)), argv, __doc__)


if __name__ == "__main__":
    main()
