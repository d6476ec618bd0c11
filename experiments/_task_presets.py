"""Per-task presets for experiments that train on several tasks.

An experiment maps task ids to subclasses of its ``Config`` whose defaults suit that task;
:func:`config_for` picks one from the command line's ``--train.task``. Only defaults change:
options given on the command line still apply, and a resumed run takes its settings from
its checkpoint.
"""

from __future__ import annotations

import sys


def task_in(argv: list[str]) -> str | None:
    """The value of ``--train.task`` on a command line, if given."""
    for i, arg in enumerate(argv):
        if arg == "--train.task" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--train.task="):
            return arg.split("=", 1)[1]
    return None


def config_for(argv: list[str] | None, default: type, presets: dict[str, type]) -> type:
    """``presets[task]`` for the task on the command line (``sys.argv`` when None), else
    ``default``."""
    task = task_in(sys.argv[1:] if argv is None else argv)
    return presets.get(task, default) if task is not None else default
