"""Runner settings of the safe CEM-MPC experiments (not an experiment itself); their
report (closed-loop plots and numbers of the final agent) is :mod:`rlwb.safe_mpc_report`."""

from __future__ import annotations

from rlwb.safe_mpc_report import write_report


def train_config(task: str):  # noqa: ANN201 - TrainConfig (imported lazily with the runner)
    """The experiments' runner settings: 400 control steps (two episodes), a final evaluation
    of 4 episodes, one checkpoint at the end."""
    from rlwb.train import TrainConfig

    return TrainConfig(
        task=task, total_steps=400, eval_every=0, eval_episodes=4, checkpoint_every=0,
        log_every=100,
    )  # fmt: skip


def run(config_cls: type, argv: list[str] | None, doc: str | None):  # noqa: ANN201
    """``run_experiment`` for the safe CEM-MPC, with :func:`write_report` at its end."""
    from rlwb.agents.safe_cem_mpc import SafeCEMMPC
    from rlwb.train import run_experiment

    return run_experiment(SafeCEMMPC, config_cls, argv, doc, on_end=write_report)
