"""Files the user names for rlwb to write: checked before anything long runs, and file-system
errors said in one line.

A missing folder is an error rather than created: a typo in a path should not leave a new
tree of folders behind (a run's own folders, under a run directory, are the exception).
"""

from __future__ import annotations

import os
import pathlib

from rlwb.errors import ConfigError


def check_output_file(path: str | os.PathLike[str], what: str) -> pathlib.Path:
    """``path`` if its folder exists and is writable, else a one-line :class:`ConfigError`."""
    path = pathlib.Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"cannot write {what} {str(path)!r}: no folder {str(parent)!r}")
    if not os.access(parent, os.W_OK) or path.is_dir():
        raise ConfigError(f"cannot write {what} {str(path)!r}: not a writable file location")
    return path


def os_error_line(exc: OSError) -> str:
    """``PATH: reason`` for an OSError that names a file (``str(exc)`` otherwise)."""
    if exc.filename is None:
        return str(exc)
    return f"{exc.filename}: {exc.strerror or type(exc).__name__}"
