"""Errors users see. The CLI prints these as one line (no traceback)."""

from __future__ import annotations


class RlwbError(Exception):
    """Base class: a problem with the user's input, named clearly."""


class UnknownTaskError(RlwbError, KeyError):
    """A task id that no backend knows."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BackendUnavailableError(RlwbError):
    """The requested backend cannot run here (missing package, no GPU, task unsupported)."""


class ActionError(RlwbError, ValueError):
    """An action batch with the wrong shape, dtype, device or non-finite values."""


class ConfigError(RlwbError, ValueError):
    """A bad configuration field or value."""


class CheckpointError(RlwbError):
    """A missing, truncated, corrupt, foreign or too-new checkpoint."""
