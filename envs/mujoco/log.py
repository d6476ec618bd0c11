"""MuJoCo's warnings, less one that users cannot act on.

Gymnasium's and dm_control's cheetah models set ``<compiler settotalmass>``, which MuJoCo
3.x reports as deprecated at every model load (each engine, spawned planner engine and
Gymnasium env copy: dozens of lines in one benchmark, and a ``MUJOCO_LOG.TXT`` in the working
folder). The model is theirs and compiles as before, so that message is dropped; every other
warning goes where it went before: to the handler installed before ours (dm_control's import
installs one that logs through absl), else printed and logged as MuJoCo itself does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mujoco

QUIET = ("compiler attribute 'settotalmass' is deprecated",)
_previous: list[Callable[..., Any] | None] = [None]


def _warning(message: str) -> None:
    if message.startswith(QUIET):
        return
    previous = _previous[0]
    if previous is not None:
        try:
            previous(message)
        except TypeError:  # a ctypes callback (dm_control's) takes bytes
            previous(message.encode())
        return
    mujoco.mju_writeLog("WARNING", message)  # MuJoCo's own behaviour without a handler
    print(f"WARNING: {message}\n", flush=True)


def quiet_known_warnings() -> None:
    """Put the filter in front of the current handler; call it right before loading a model
    (a library imported since may have installed its own)."""
    current = mujoco.get_mju_user_warning()
    if current is _warning:
        return
    _previous[0] = current
    mujoco.set_mju_user_warning(_warning)
