"""Shared test setup: the repository root on ``sys.path``, so ``tests.toy_agent`` and
``tests.helpers`` import the same way in-process and in child processes."""

from __future__ import annotations

import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# MuJoCo renders offscreen through EGL (the same default as the rlwb command).
os.environ.setdefault("MUJOCO_GL", "egl")
