"""Configuration plumbing: dataclasses to plain data and back, YAML, command lines.

Configs are dataclasses (``TrainConfig``, each agent's config). A run stores them as plain
dicts (``config.yaml``, checkpoints) so that a checkpoint stays loadable when a config class
gains a field, and rebuilds them with :func:`from_dict`. Command lines are parsed by tyro;
:func:`parse_cli` turns tyro's boxed error message into one :class:`ConfigError` line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import importlib
import io
import os
import pathlib
import re
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

import torch
import yaml

from rlwb.errors import ConfigError

T = TypeVar("T")

TaskKwargs = dict[str, int | float | bool | str]
"""A task's keyword arguments as command lines give them (``--train.task-kwargs``,
``rlwb eval --task-kwargs``): KEY VALUE pairs, each value read as the first of int, float,
bool, str that parses."""
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colour codes tyro writes on a terminal


def class_path(obj: type | Any) -> str:
    """``"module:QualName"`` of a class (or of an instance's class)."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


MOVED_MODULES = {
    "rlwb.agents.gdg": "rlwb.agents.goal.gdg",
    "rlwb.agents.ddpg_her": "rlwb.agents.goal.ddpg_her",
    "rlwb.agents.deep_ga": "rlwb.agents.deep_ga.agent",
    "rlwb.agents.tdmpc": "rlwb.agents.tdmpc.agent",
    "rlwb.agents.safe_cem_mpc": "rlwb.agents.safe_cem_mpc.agent",
}
"""Where modules named in older run folders and checkpoints (which store class paths) live now."""


def import_object(path: str) -> Any:
    """Import ``"module:Name"`` (the inverse of :func:`class_path`), following moved modules."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"expected 'module:Name', got {path!r}")
    module_name = MOVED_MODULES.get(module_name, module_name)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r} (for {path!r}): {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{module_name!r} has no attribute {attr!r}") from None
    return obj


def same_class(path: object, cls: type) -> bool:
    """Whether a stored class path names ``cls`` (also under a module name it had before)."""
    if not isinstance(path, str):
        return False
    module_name, _, attr = path.partition(":")
    return f"{MOVED_MODULES.get(module_name, module_name)}:{attr}" == class_path(cls)


def to_plain(value: Any) -> Any:
    """Dataclasses, tuples, paths, devices, dtypes, enums and tensors as YAML-safe data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, torch.device | torch.dtype | pathlib.PurePath):
        return str(value)
    if value is None or isinstance(value, bool):
        return None if value is None else bool(value)
    for kind in (int, float, str):  # subclasses (TorchVersion, IntEnum) as the plain kind
        if isinstance(value, kind):
            return kind(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return to_plain(value.item())
    return repr(value)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild dataclass ``cls`` from :func:`to_plain` output.

    Unknown keys are an error (a config from another class); missing keys take the class's
    defaults, so configs saved before a field was added still load.
    """
    if not dataclasses.is_dataclass(cls):
        raise ConfigError(f"{cls!r} is not a dataclass")
    if not isinstance(data, dict):
        raise ConfigError(f"config for {cls.__name__} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")
    kwargs = {k: _convert(hints.get(k, Any), v) for k, v in data.items()}
    return cls(**kwargs)


def _convert(tp: Any, value: Any) -> Any:
    """Coerce plain data to annotation ``tp`` where the plain form lost the type."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _convert(typing.get_args(tp)[0], value)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is not type(None) and dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return from_dict(arg, value)
        non_none = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(non_none[0], value) if len(non_none) == 1 else value
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value)
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        if args and len(args) == len(value):
            return tuple(_convert(a, v) for a, v in zip(args, value, strict=True))
        return tuple(value)
    if origin is list and isinstance(value, list):
        (arg,) = typing.get_args(tp) or (Any,)
        return [_convert(arg, v) for v in value]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def dump_yaml(data: Any, path: str | os.PathLike[str]) -> None:
    """Write ``data`` (made plain first) as block-style YAML, keys in insertion order."""
    text = yaml.safe_dump(to_plain(data), sort_keys=False, default_flow_style=False)
    pathlib.Path(path).write_text(text)


def load_yaml(path: str | os.PathLike[str]) -> Any:
    return yaml.safe_load(pathlib.Path(path).read_text())


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}`` (for TensorBoard hyperparameters)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def parse_cli(
    cls: type[T],
    args: Sequence[str] | None,
    description: str | None = None,
    prog: str | None = None,
) -> T:
    """``tyro.cli`` that reports a bad command line as one :class:`ConfigError` line.

    ``--help`` still prints tyro's help and exits 0.
    """
    import tyro

    captured = io.StringIO()
    old_columns = os.environ.get("COLUMNS")
    if not {"-h", "--help"} & set(args or ()):  # help keeps the terminal's width
        os.environ["COLUMNS"] = "1000"  # keep tyro's error on one line per paragraph
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.cli(cls, args=args, description=description, prog=prog)
    except SystemExit as exc:
        if exc.code in (0, None):
            raise
        raise ConfigError(summarize_tyro_error(captured.getvalue())) from None
    finally:
        if old_columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old_columns


def summarize_tyro_error(text: str) -> str:
    """The first paragraph of tyro's error panel (boxed, or plain when the terminal cannot
    draw boxes), as one line."""
    paragraphs: list[str] = []
    current: list[str] = []
    boxed = False

    def flush() -> None:
        if current:
            paragraphs.append(" ".join(current))
            current.clear()

    for raw in _ANSI.sub("", text).splitlines():
        line = raw.strip()
        if line.startswith(("╭", "╰")):
            boxed = True
            flush()
            continue
        content = line.strip("│|").strip()
        if content and set(content) <= set("─-━═"):
            flush()
        elif content:
            current.append(content)
    flush()
    if not boxed and len(paragraphs) > 1:
        paragraphs = paragraphs[1:]  # the plain panel's first paragraph is its title
    message = paragraphs[0] if paragraphs else "bad arguments"
    return f"bad command line: {message} (see --help)"
