"""Running a Python call as a shell command: rlwb errors are one line on stderr and exit
code 2, an interrupted run exits with 128 + the signal's number (130 for Ctrl-C, 143 for
SIGTERM). ``rlwb`` itself and ``python -m rlwb.experiments.X`` both end this way; it lives
apart from :mod:`rlwb.cli` so the runner never imports the command-line front end.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

from rlwb.errors import RlwbError
from rlwb.paths import os_error_line

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
T = TypeVar("T")


def exit_code(result: Any) -> int:
    """0, or 128 + the signal that interrupted a run."""
    if not getattr(result, "interrupted", False):
        return 0
    return 128 + int(getattr(result, "stop_signal", 0) or 2)


def run_as_command(fn: Callable[[], T]) -> T:
    """Run ``fn`` as a shell command does: an rlwb error is one line on stderr and exit
    code 2, Ctrl-C exit code 130; an interrupted run exits with :func:`exit_code`."""
    try:
        result = fn()
    except RlwbError as exc:
        print(f"rlwb: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except OSError as exc:
        if exc.filename is None:
            raise
        print(f"rlwb: error: {os_error_line(exc)}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        print("rlwb: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    code = exit_code(result)
    if code:
        sys.exit(code)
    return result
