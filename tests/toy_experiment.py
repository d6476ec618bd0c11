"""Toy experiment for CLI tests: ToyAgent on Toy-v0 (run with PYTHONPATH = repository root)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rlwb.train import TrainConfig, run_experiment
from tests.toy_agent import ToyAgent, ToyConfig


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="Toy-v0", total_steps=400, learning_starts=50, eval_every=200,
            checkpoint_every=200, log_every=100, eval_episodes=4, progress=False,
        )
    )  # fmt: skip
    agent: ToyConfig = field(default_factory=ToyConfig)


def main(argv: list[str] | None = None):  # noqa: ANN201
    return run_experiment(ToyAgent, Config, argv, __doc__)


if __name__ == "__main__":
    main()
