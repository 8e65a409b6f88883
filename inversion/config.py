"""The one base of the package's model configs (generator, encoders, Fuser, critic).

Configs are dataclasses of JSON-friendly fields: they travel in bundle manifests and
training checkpoints as plain dicts. Each used to carry its own ``from_dict``/
``to_dict``, and they differed (one ignored unknown keys, one refused them with a
``ValueError``, one wrote int keys as strings, another did not). Here it is done once:

* ``from_dict`` refuses keys the class does not define with
  :class:`~inversion.errors.UnknownConfigKey`, checks simple field types (``int``,
  ``float``, ``bool``, ``str`` and their ``| None``) and turns any other refusal of the
  constructor into :class:`~inversion.errors.ConfigError` naming the class;
* ``to_dict`` gives plain JSON types (tuples -> lists, int dict keys -> strings);
* ``__post_init__`` runs the subclass's :meth:`validate`, which normalises fields
  (e.g. JSON lists back to tuples) and raises ``ConfigError`` for bad values, so a
  config object that exists is a valid one however it was made.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from inversion.errors import ConfigError, UnknownConfigKey

__all__ = ["ModelConfig"]

C = TypeVar("C", bound="ModelConfig")

_SIMPLE = (bool, int, float, str)


class ModelConfig:
    """Mixin of every model config dataclass: (de)serialisation and validation."""

    def __post_init__(self) -> None:
        self._check_types()
        self.validate()

    def validate(self) -> None:
        """Normalise fields and raise :class:`ConfigError` for bad values (subclasses)."""

    @classmethod
    def config_name(cls) -> str:
        return cls.__name__

    @classmethod
    def from_dict(cls: type[C], d: Mapping[str, Any]) -> C:
        """Build from a mapping (a manifest or checkpoint entry); unknown keys are refused."""
        if isinstance(d, cls):
            return d
        if not isinstance(d, Mapping):
            raise ConfigError(
                f"{cls.config_name()} must be built from a mapping, got {type(d).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(str(k) for k in d if k not in known)
        if unknown:
            raise UnknownConfigKey(cls.config_name(), unknown)
        try:
            return cls(**dict(d))
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{cls.config_name()} is invalid: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only: what a manifest stores and :meth:`from_dict` reads back."""
        return json.loads(json.dumps(dataclasses.asdict(self), sort_keys=True))  # type: ignore[call-overload]

    def _check_types(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            allowed = _simple_types(hints.get(f.name))
            if allowed is None:
                continue
            value = getattr(self, f.name)
            if float in allowed and int not in allowed and _is_instance(value, (int,)):
                setattr(self, f.name, float(value))  # 1 and 1.0 are the same config
            elif not _is_instance(value, allowed):
                names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
                raise ConfigError(f"{self.config_name()}.{f.name} must be {names}, got {value!r}")


def _simple_types(hint: Any) -> tuple[type, ...] | None:
    """(types...) for ``int``, ``float | None``...; None for fields not checked here."""
    if hint in _SIMPLE:
        return (hint,)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = typing.get_args(hint)
        if all(a in _SIMPLE or a is type(None) for a in args):
            return tuple(args)
    return None


def _is_instance(value: Any, allowed: tuple[type, ...]) -> bool:
    for t in allowed:
        if t is type(None) and value is None:
            return True
        if t is bool and isinstance(value, bool):
            return True
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if t is str and isinstance(value, str):
            return True
    return False
