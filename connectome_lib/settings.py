"""One loader and one validation for every settings dataclass: profiles and evaluation options.

A *settings class* is a dataclass whose fields are simple types (``bool``, ``int``, ``float``,
``str``, ``list[...]`` of them, ``X | None``) or other settings classes. :func:`load` builds one
from a nested mapping (a YAML profile, an ``evals:`` section), applies dotted ``key=value``
overrides (command line, papermill parameters) and validates the result with :func:`validate`:
every value against its annotation (harmless conversions such as int -> float are made), then
each class's own rules -- its ``check(where)`` method, children before parents. A misspelt key
is an error that names the closest valid key.

A string field whose name ends in ``_include``, ``_exclude``, ``_pattern`` or ``_regex`` holds
a regular expression; :func:`validate` refuses an invalid one by its dotted key.

A settings class may say which error it raises (class attribute ``config_error``, default
:class:`ConfigError`), how its keys are called in messages (``config_key_name``, default
"configuration key") and give an example override (``config_example``). The root class of a
:func:`load` decides for the whole tree.

This module imports nothing of the package, so that every configuration module may use it.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from typing import Any, Iterable, Mapping, Union

import yaml


class ConfigError(ValueError):
    """A profile or override is invalid (unknown key, wrong type, bad value)."""


Overrides = Union[Mapping[str, Any], Iterable[str], None]


def error_class(cls: type) -> type[ConfigError]:
    return getattr(cls, "config_error", ConfigError)


def key(where: str, name: str) -> str:
    """The dotted key of field ``name`` under ``where`` (``""`` at the top)."""
    return f"{where}.{name}" if where else name


def require(ok: bool, name: str, value: Any, rule: str, error: type[Exception] = ConfigError) -> None:
    """Raise ``error("<name> must be <rule>, got <value>")`` unless ``ok``.

    The ``check`` methods use it so that a value torch would reject only deep inside a run
    (a negative learning rate, a model with no layers) is refused up front, by its dotted key.
    """
    if not ok:
        raise error(f"{name} must be {rule}, got {value!r}")


def did_you_mean(name: Any, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(what: str, names: list[str], choices: Iterable[str], error: type[Exception] = ConfigError) -> Exception:
    """``unknown <what> 'a', 'b' (did you mean 'x'?); known: ...``."""
    choices = list(choices)
    hint = did_you_mean(names[0], choices) if names else ""
    return error(f"unknown {what} {', '.join(map(repr, names))}{hint}; known: {', '.join(choices)}")


def require_choice(value: Any, allowed: Iterable[str], name: str, error: type[Exception] = ConfigError) -> None:
    """Raise ``error("<name> must be one of (...), got 'v' (did you mean ...)")`` unless allowed."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise error(f"{name} must be one of {allowed}, got {value!r}{did_you_mean(value, allowed)}")


def _unknown_key(cls: type, name: str, where: str, root: type) -> Exception:
    names = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(names)}"
    what = getattr(root, "config_key_name", "configuration key")
    return error_class(root)(f"unknown {what} {key(where, name)!r}{hint}")


def is_settings(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


# --------------------------------------------------------------------------------------------
# values against annotations


def coerce(value: Any, tp: Any, where: str, root: type | None = None) -> Any:
    """Check ``value`` against the annotation ``tp``; convert the harmless cases (int -> float).

    ``root`` is the settings class being loaded: its ``config_error`` is raised."""
    error = error_class(root) if root is not None else ConfigError
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where, root)
            except ConfigError as e:
                errors.append(e)
        raise errors[0] if errors else error(f"{where}: invalid value {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise error(f"{where}: expected a list, got {value!r}")
        return [coerce(v, item_tp, f"{where}[{i}]", root) for i, v in enumerate(value)]
    if is_settings(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise error(f"{where}: expected a mapping, got {value!r}")
        return build(tp, value, where, root or tp)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise error(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise error(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 1e-3 as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise error(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise error(f"{where}: expected a string, got {value!r}")
    if tp is Any:
        return value
    raise error(f"{where}: unsupported annotation {tp!r}")  # pragma: no cover


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def build(cls: type, data: Mapping[str, Any], where: str = "", root: type | None = None) -> Any:
    """Build settings class ``cls`` from a nested mapping, rejecting unknown keys and wrong types.

    A partial mapping for a nested settings field overrides that field's *own* default (e.g.
    ``evolve.train`` keeps the outer loop's defaults, such as weight_decay 0, for every key a
    profile leaves out). ``root``: the class whose errors are raised (default ``cls``).
    """
    root = root or cls
    if not isinstance(data, Mapping):
        raise error_class(root)(f"{where or cls.__name__}: expected a mapping, got {data!r}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in data.items():
        if name not in fields:
            raise _unknown_key(cls, name, where, root)
        f = fields[name]
        if isinstance(value, Mapping) and is_settings(hints[name]) and f.default_factory is not dataclasses.MISSING:
            value = merge(dataclasses.asdict(f.default_factory()), value)
        kwargs[name] = coerce(value, hints[name], key(where, name), root)
    try:
        return cls(**kwargs)
    except ConfigError as e:  # a class that validates itself on construction names its keys from the top
        if not where:
            raise
        raise type(e)(f"{where}: {e}") from e


#: a string field whose name ends in one of these holds a regular expression (e.g. ``evolve.prune_include``)
PATTERN_SUFFIXES = ("_include", "_exclude", "_pattern", "_regex")


def check_pattern(value: Any, name: str, error: type[Exception] = ConfigError) -> None:
    """Raise ``error`` naming the key ``name`` unless ``value`` (a string, or ``None``) is a valid
    regular expression: an invalid one would otherwise fail only where it is used, deep in a run."""
    if not isinstance(value, str):
        return
    try:
        re.compile(value)
    except re.error as e:
        raise error(f"{name}: {value!r} is not a valid regular expression ({e}); fix it (Python re syntax; "
                    "escape . ( [ with a backslash to match them literally)") from None


def validate(obj: Any, where: str = "") -> Any:
    """Check every field of ``obj`` against its annotation and every class's ``check(where)``
    rules, nested settings first; return ``obj`` (values normalised, e.g. int -> float)."""
    cls = type(obj)
    hints = _hints(cls)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            validate(value, key(where, f.name))
        else:
            setattr(obj, f.name, coerce(value, hints[f.name], key(where, f.name), cls))
            if f.name.endswith(PATTERN_SUFFIXES):
                check_pattern(getattr(obj, f.name), key(where, f.name), error_class(cls))
    check = getattr(obj, "check", None)
    if check is not None:
        check(where)
    return obj


# --------------------------------------------------------------------------------------------
# overrides


def yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error in one line: the problem and where (1-based line and column)."""
    problem = getattr(e, "problem", None) or getattr(e, "context", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def parse_override(text: str, error: type[Exception] = ConfigError,
                   example: str = "evolve.generations=3") -> tuple[str, Any]:
    """Parse ``key=value`` (value in YAML syntax: ``3``, ``1e-3``, ``[0, 1]``, ``null``)."""
    if "=" not in text:
        raise error(f"override {text!r} must look like key=value, e.g. {example}")
    name, raw = text.split("=", 1)
    name = name.strip()
    if not name:
        raise error(f"override {text!r} has an empty key")
    if not raw.strip():
        return name, ""
    try:
        return name, yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise error(
            f"override {text!r}: the value {raw!r} is not valid YAML ({yaml_problem(e)}); "
            "quote a string, close brackets, e.g. --set develop.seeds=[0,1]"
        ) from None


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update``, nested mappings merged key by key."""
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def _annotation(cls: type, dotted: str) -> Any:
    """The annotation of the dotted field ``dotted`` of ``cls``, or ``None`` if there is none
    (:func:`build` then names the unknown key)."""
    tp: Any = cls
    for part in dotted.split("."):
        if not is_settings(tp):
            return None
        tp = _hints(tp).get(part)
        if tp is None:
            return None
    return tp


def _list_type(tp: Any) -> bool:
    if typing.get_origin(tp) in (Union, types.UnionType):
        return any(_list_type(a) for a in typing.get_args(tp))
    return typing.get_origin(tp) is list


def _shorthand(value: Any, tp: Any) -> Any:
    """For a list field: ``a,b`` -> ``[a, b]`` and a single value ``a`` -> ``[a]``."""
    if tp is None or not _list_type(tp) or value is None or isinstance(value, (list, tuple, Mapping)):
        return value
    if isinstance(value, str):
        return [_yaml_or_text(v.strip()) for v in value.split(",") if v.strip()]
    return [value]


def _yaml_or_text(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def nest_overrides(cls: type, overrides: Overrides, prefix: str = "") -> dict[str, Any]:
    """Dotted overrides (``{"a.b": 1}`` or ``["a.b=1"]``) as a nested mapping for ``cls``.

    ``prefix`` (e.g. ``"evals."``) is stripped from keys that carry it. A comma-separated value
    for a list field (``tasks=hellaswag,mmlu``) is split, and a single value becomes a list.
    """
    error = error_class(cls)
    if not overrides:
        return {}
    if not isinstance(overrides, Mapping):
        example = getattr(cls, "config_example", "evolve.generations=3")
        overrides = dict(parse_override(o, error, example) for o in overrides)
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        dotted = dotted.strip()
        if prefix and dotted.startswith(prefix):
            dotted = dotted[len(prefix):]
        value = _shorthand(value, _annotation(cls, dotted))
        parts = dotted.split(".")
        node = nested
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise error(f"override {dotted!r} conflicts with another override")
        node[parts[-1]] = value
    return nested


def load(cls: type, data: Mapping[str, Any] | None = None, overrides: Overrides = None, prefix: str = "") -> Any:
    """THE way to make settings: ``cls`` from a nested mapping plus dotted overrides, validated."""
    data = merge(dict(data or {}), nest_overrides(cls, overrides, prefix))
    return validate(build(cls, data))


def apply_overrides(obj: Any, overrides: Overrides, prefix: str = "") -> Any:
    """A validated copy of the settings ``obj`` with dotted overrides applied."""
    return load(type(obj), dataclasses.asdict(obj), overrides, prefix)
