"""Task definitions (installed as ``rlwb.envs``). Importing registers every built-in task."""

from rlwb.envs import classic as _classic  # noqa: F401
from rlwb.envs import dmc as _dmc  # noqa: F401
from rlwb.envs import mujoco as _mujoco  # noqa: F401
from rlwb.envs import quadrotor as _quadrotor  # noqa: F401
from rlwb.envs import robotics as _robotics  # noqa: F401
