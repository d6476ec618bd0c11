"""MuJoCo's warnings, less one that users cannot act on.

Gymnasium's and dm_control's cheetah models set ``<compiler settotalmass>``, which MuJoCo
3.x reports as deprecated at every model load (each engine, spawned planner engine and
Gymnasium env copy: dozens of lines in one benchmark, and a ``MUJOCO_LOG.TXT`` in the working
folder). The model is theirs and compiles as before, so that message is dropped; every other
warning is printed and logged as MuJoCo itself would.
"""

from __future__ import annotations

import mujoco

QUIET = ("compiler attribute 'settotalmass' is deprecated",)


def _warning(message: str) -> None:
    if message.startswith(QUIET):
        return
    mujoco.mju_writeLog("WARNING", message)  # MuJoCo's own behaviour without a handler
    print(f"WARNING: {message}\n", flush=True)


def quiet_known_warnings() -> None:
    """Install the filter once per process (a handler the user installed is kept)."""
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_warning)
