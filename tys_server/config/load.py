"""YAML file + TYS_* environment → Settings, checked (DESIGN section 4).

The file is YAML, typed by YAML's own rules. An environment value is text, read by the
type of its key, never as YAML (a password may hold ``#``, quotes or spaces):
- an empty value of a key that may be null (``TYS_DATABASE_DSN=``, ``TYS_TRACKING_GATE_FT=``)
  means null;
- a string key takes the value verbatim, surrounding spaces included;
- a boolean is ``true`` or ``false`` in any letter case; ``1``, ``yes``, ``on`` and the
  like are refused, so a typo cannot silently turn a switch;
- an integer is decimal digits with an optional sign; a float is a decimal number
  (``2.5``, ``1e3``), never ``nan`` or ``inf``; spaces around either are ignored;
- a list is comma-separated (``TYS_CMX_HOSTS=cmx1,cmx2``; empty → an empty list).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tys_server.config.checks import describe, validate
from tys_server.config.settings import ConfigError, Settings

DEFAULT_CONFIG = Path("conf/tys.yaml")
ENV_PREFIX = "TYS_"

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def load_settings(path: Path | str | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read the YAML file (if any), apply TYS_* overrides, validate."""
    raw: Any = {}
    if path is not None:
        raw = _read_yaml(Path(path))
    settings = _build(Settings, raw, "")
    settings = _apply_environment(settings, os.environ if environ is None else environ)
    validate(settings)
    return settings


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # One line, and never PyYAML's snippet of the offending line: it may be a password.
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"config file {path} is not valid YAML: {problem}{where}") from None
    return {} if raw is None else raw


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        # Only the type: a section given as a scalar may be a misplaced password.
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, "
                          f"got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise ConfigError(f"{prefix}{key}: unknown key")
    values = {name: _convert(hints[name], raw[name], f"{prefix}{name}")
              for name in names & raw.keys()}
    return cls(**values)


def _convert(kind: Any, value: Any, key: str) -> Any:
    """A YAML value checked against the type of its key."""
    if dataclasses.is_dataclass(kind):
        return _build(kind, value if value is not None else {}, key + ".")  # type: ignore[arg-type]
    target, optional = _unwrap(kind)
    if value is None and optional:
        return None
    if typing.get_origin(target) is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {describe(key, value)}")
        return tuple(_convert(str, item, f"{key}[{i}]") for i, item in enumerate(value))
    if target is bool:
        if isinstance(value, bool):
            return value
    elif target is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif target is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{key}: expected a finite float, got {describe(key, value)}")
            return float(value)
    elif target is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {target.__name__}, got {describe(key, value)}")


def _unwrap(kind: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return options[0], len(options) < len(typing.get_args(kind))
    return kind, False


def _leaves(cls: type, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out = []
    for name, kind in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(kind):
            out.extend(_leaves(kind, path + (name,)))  # type: ignore[arg-type]
        else:
            out.append((path + (name,), kind))
    return out


def env_name(path: tuple[str, ...]) -> str:
    """TYS_<SECTION>_<KEY>, e.g. ('auth', 'api', 'password') → TYS_AUTH_API_PASSWORD."""
    return ENV_PREFIX + "_".join(path).upper()


def _apply_environment(settings: Settings, environ: Mapping[str, str]) -> Settings:
    for path, kind in _leaves(Settings):
        name = env_name(path)
        if name in environ:
            value = parse_env(kind, environ[name], name, ".".join(path))
            settings = _replace_path(settings, path, value)
    return settings


def parse_env(kind: Any, text: str, name: str, key: str) -> Any:
    """One TYS_* value read by the type of its key (see the module docstring)."""
    target, optional = _unwrap(kind)
    if typing.get_origin(target) is tuple:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if optional and text == "":
        return None
    if target is str:
        return text
    stripped = text.strip()
    if target is bool:
        if stripped.lower() in ("true", "false"):
            return stripped.lower() == "true"
        expected = "bool (true or false)"
    elif target is int:
        if _INT.fullmatch(stripped):
            return int(stripped)
        expected = "int"
    elif target is float:
        if _FLOAT.fullmatch(stripped) and math.isfinite(float(stripped)):
            return float(stripped)
        expected = "float"
    else:  # a new kind of setting must say here how its text is read
        raise ConfigError(f"{name}: cannot be set from the environment")
    raise ConfigError(f"{name}: expected {expected}, got {describe(key, text)}")


def _replace_path(obj: Any, path: tuple[str, ...], value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: value})
    child = getattr(obj, path[0])
    return dataclasses.replace(obj, **{path[0]: _replace_path(child, path[1:], value)})
