"""What an experiment script calls: :func:`run_experiment` parses the command line into the
experiment's config (tyro), trains with :func:`rlwb.train.train` and prints a summary.

Called with ``argv=None`` (``python -m rlwb.experiments.X``) it behaves as ``rlwb train X``
(one error line and exit code 2 for a bad option, 128 + the signal for an interrupted run)
through :mod:`rlwb.command`, never through the CLI module itself.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
from dataclasses import field
from typing import Annotated

import tyro

from rlwb.agent import Agent
from rlwb.command import run_as_command
from rlwb.config import parse_cli
from rlwb.errors import ConfigError
from rlwb.resume import explicit_fields
from rlwb.train import EndHook, TrainConfig, TrainResult, budget_as_given, train


def experiment_name(config_cls: type) -> str:
    module = config_cls.__module__
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        if spec is not None and spec.name:
            return spec.name.rsplit(".", 1)[-1]
        return pathlib.Path(sys.argv[0]).stem or "experiment"
    return module.rsplit(".", 1)[-1]


def launch_command(config_cls: type) -> str:
    """``rlwb train X``, with X as ``rlwb train`` finds this experiment again."""
    module = config_cls.__module__
    given = getattr(sys.modules.get(module), "__rlwb_experiment__", None)  # a .py file
    if given:
        return f"rlwb train {given}"
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec is not None and spec.name else sys.argv[0]
    short = module.removeprefix("rlwb.experiments.")
    return f"rlwb train {short}"


def _with_resume(config_cls: type) -> type:
    """``config_cls`` plus a ``--resume PATH`` option, for tyro."""
    resume_type = Annotated[
        str | None,
        tyro.conf.arg(
            help="Continue from this checkpoint (file, or run folder: its latest) with its "
            "settings; options given with it change those settings."
        ),
    ]
    return dataclasses.make_dataclass(
        config_cls.__name__,
        [("resume", resume_type, field(default=None))],
        bases=(config_cls,),
    )


def run_experiment(
    agent_cls: type[Agent],
    config_cls: type,
    argv: list[str] | None = None,
    description: str | None = None,
    on_end: EndHook | None = None,
) -> TrainResult:
    """Parse overrides of ``config_cls`` (fields ``train`` and ``agent``), train, summarise.

    Called with ``argv=None`` (``python -m rlwb.experiments.X``), it reads ``sys.argv`` and
    behaves as ``rlwb train X``: a bad option is one line on stderr and exit code 2, an
    interrupted run exits with 128 + the signal number. ``on_end(agent, result, logger)``
    runs once after the final evaluation, as in :func:`rlwb.train.train`.
    """
    if argv is None:
        return run_as_command(
            lambda: _run_experiment(agent_cls, config_cls, None, description, on_end)
        )
    return _run_experiment(agent_cls, config_cls, argv, description, on_end)


def _run_experiment(
    agent_cls: type[Agent],
    config_cls: type,
    argv: list[str] | None,
    description: str | None,
    on_end: EndHook | None,
) -> TrainResult:
    if not dataclasses.is_dataclass(config_cls):
        raise ConfigError(f"{config_cls!r} must be a dataclass with fields 'train' and 'agent'")
    args = sys.argv[1:] if argv is None else list(argv)
    parsed = parse_cli(
        _with_resume(config_cls), args, description=description or config_cls.__doc__
    )
    config = config_cls(
        **{f.name: getattr(parsed, f.name) for f in dataclasses.fields(config_cls) if f.init}
    )
    explicit = explicit_fields(args)
    train_cfg: TrainConfig = budget_as_given(config.train, explicit)
    if train_cfg.experiment is None:
        train_cfg = dataclasses.replace(train_cfg, experiment=experiment_name(config_cls))
    result = train(
        agent_cls,
        config.agent,
        train_cfg,
        resume=parsed.resume,
        explicit=explicit,
        launch=launch_command(config_cls),
        on_end=on_end,
    )
    print_summary(result)
    return result


def print_summary(result: TrainResult) -> None:
    from rich.console import Console

    from rlwb.evaluate import format_result

    console = Console()
    console.print(f"run dir:     {result.run_dir}", highlight=False, soft_wrap=True)
    console.print(f"checkpoint:  {result.checkpoint}", highlight=False, soft_wrap=True)
    steps, scale = result.env_steps, result.step_scale
    agent_steps = f"{steps:,} agent steps x {scale}, " if scale > 1 else ""
    console.print(
        f"env steps:   {steps * scale:,} ({agent_steps}{result.updates:,} updates, "
        f"{result.wall_time:.1f} s)",
        highlight=False,
    )
    if result.interrupted:
        console.print("interrupted: no final evaluation (resume with the line above)")
    else:
        n = len(result.eval_returns)
        console.print(
            f"final eval:  {format_result(result.eval_mean, result.eval_std, n)}", highlight=False
        )
    console.print(
        f"watch:       tensorboard --logdir {result.run_dir.parent}",
        highlight=False,
        soft_wrap=True,
    )
    if result.checkpoint is not None:
        console.print(
            f"evaluate:    rlwb eval {result.checkpoint}", highlight=False, soft_wrap=True
        )
