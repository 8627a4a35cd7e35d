"""Configurations: which apps, with which settings, joined by which links.

Build one in code::

    c = config.new()
    config.app(c, "src", "basic.Source", {"size": 60})
    config.app(c, "sink", Sink)
    config.link(c, "src.output -> sink.input")

or load it from YAML (``load_yaml``). Every mistake raises ``ConfigError``
with a message naming the app, key or link at fault.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REQUIRED = object()


class ConfigError(Exception):
    """A user's mistake in a configuration: the message says what and where."""


@dataclass(frozen=True)
class Param:
    """A configuration key an app accepts.

    ``type`` is a type or a converter (a callable raising ValueError or
    TypeError on a bad value); ``default`` is REQUIRED for a required key."""

    type: Any = None
    default: Any = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        """True when the key has no default."""
        return self.default is REQUIRED

    def convert(self, value: Any) -> Any:
        """Checks and converts a value given for this key."""
        t = self.type
        if t is None or value is None:
            return value
        if t is bool:
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
            return value
        if t in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"expected a number, got {value!r}")
            if t is int and value != int(value):
                raise ValueError(f"expected an integer, got {value!r}")
            return t(value)
        if t in (str, list, dict):
            if not isinstance(value, t):
                raise ValueError(f"expected a {t.__name__}, got {value!r}")
            return value
        return t(value)


LINK_SPEC = re.compile(r"^\s*([\w-]+)\.([\w-]+)\s*->\s*([\w-]+)\.([\w-]+)\s*$")


@dataclass(frozen=True, order=True)
class LinkSpec:
    """One link: ``from_app.from_port -> to_app.to_port``."""

    from_app: str
    from_port: str
    to_app: str
    to_port: str

    def __str__(self) -> str:
        return f"{self.from_app}.{self.from_port} -> {self.to_app}.{self.to_port}"


def parse_link(spec: str) -> LinkSpec:
    """Parses ``"a.out -> b.in"``."""
    m = LINK_SPEC.match(spec) if isinstance(spec, str) else None
    if not m:
        raise ConfigError(f"link {spec!r}: malformed, expected 'app.port -> app.port'")
    return LinkSpec(*m.groups())


@dataclass
class AppSpec:
    """One app of a configuration: its class and validated configuration."""

    cls: type
    conf: dict[str, Any]
    class_name: str = ""


@dataclass
class Config:
    """A whole graph: apps by name and the set of links."""

    apps: dict[str, AppSpec] = field(default_factory=dict)
    links: dict[str, LinkSpec] = field(default_factory=dict)


def new() -> Config:
    """An empty configuration."""
    return Config()


def resolve_class(name: str) -> type:
    """Finds an app class: ``"basic.Source"`` is a built-in (in
    ``snabbpy.apps.basic``), ``"mypkg.apps:Counter"`` a user's own."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"app class {name!r}: expected a name like 'basic.Source'")
    if ":" in name:
        module_name, _, attr = name.partition(":")
    else:
        module_name, _, attr = name.rpartition(".")
        module_name = f"snabbpy.apps.{module_name}" if module_name else ""
    if not module_name or not attr:
        raise ConfigError(
            f"app class {name!r}: expected 'package.Class' (built-in) or 'module:Class'"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"app class {name!r}: no module {exc.name!r}") from None
    cls = getattr(module, attr, None)
    if not isinstance(cls, type):
        raise ConfigError(f"app class {name!r}: module {module_name!r} has no class {attr!r}")
    return cls


def validate(app_name: str, cls: type, conf: Any) -> dict[str, Any]:
    """Checks ``conf`` against the keys ``cls`` declares; fills defaults."""
    params: dict[str, Param] = getattr(cls, "config", {}) or {}
    conf = {} if conf is None else conf
    if not isinstance(conf, dict):
        raise ConfigError(f"app {app_name!r}: config must be a mapping, got {conf!r}")
    where = f"app {app_name!r} ({cls.__name__})"
    unknown = sorted(set(conf) - set(params))
    if unknown:
        known = ", ".join(sorted(params)) or "none"
        raise ConfigError(f"{where}: unknown config key {unknown[0]!r} (known keys: {known})")
    result = {}
    for key, param in params.items():
        if key in conf:
            try:
                result[key] = param.convert(conf[key])
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{where}: config key {key!r}: {exc}") from None
        elif param.required:
            raise ConfigError(f"{where}: missing required config key {key!r}")
        else:
            result[key] = param.default
    return result


def app(c: Config, name: str, cls: type | str, conf: dict[str, Any] | None = None) -> None:
    """Adds (or replaces) app ``name`` of class ``cls`` with ``conf``."""
    if not isinstance(name, str) or not re.fullmatch(r"[\w-]+", name):
        raise ConfigError(f"app name {name!r}: use letters, digits, '_' and '-'")
    class_name = cls if isinstance(cls, str) else f"{cls.__module__}:{cls.__qualname__}"
    klass = resolve_class(cls) if isinstance(cls, str) else cls
    c.apps[name] = AppSpec(klass, validate(name, klass, conf), class_name)


def link(c: Config, spec: str) -> None:
    """Adds a link; each output port and each input port takes one link."""
    ls = parse_link(spec)
    for other in c.links.values():
        if (other.from_app, other.from_port) == (ls.from_app, ls.from_port) and other != ls:
            raise ConfigError(
                f"link '{ls}': output port {ls.from_app}.{ls.from_port} is already "
                f"linked ('{other}')"
            )
        if (other.to_app, other.to_port) == (ls.to_app, ls.to_port) and other != ls:
            raise ConfigError(
                f"link '{ls}': input port {ls.to_app}.{ls.to_port} is already linked ('{other}')"
            )
    c.links[str(ls)] = ls


def check(c: Config) -> None:
    """Checks that every link joins apps of the configuration."""
    for ls in c.links.values():
        for end in (ls.from_app, ls.to_app):
            if end not in c.apps:
                raise ConfigError(f"link '{ls}': no app named {end!r}")


def load_yaml(path: str | Path) -> Config:
    """Loads a YAML graph (``apps:`` mapping, ``links:`` list); errors name
    the file. A user's app modules may sit next to the file or in the
    current directory: both are put on the import path."""
    path = Path(path)
    for directory in (str(path.resolve().parent), os.getcwd()):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: malformed YAML{at}: {problem}") from None
    try:
        return from_dict(doc)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def from_dict(doc: Any) -> Config:
    """Builds a configuration from the structure a YAML graph holds."""
    if not isinstance(doc, dict):
        raise ConfigError("expected a mapping with 'apps' and 'links'")
    unknown = sorted(set(doc) - {"apps", "links"})
    if unknown:
        raise ConfigError(f"unknown top-level key {unknown[0]!r} (expected 'apps' and 'links')")
    apps, links = doc.get("apps") or {}, doc.get("links") or []
    if not isinstance(apps, dict):
        raise ConfigError("'apps' must be a mapping of app name to {class, config}")
    if not isinstance(links, list):
        raise ConfigError("'links' must be a list of 'app.port -> app.port'")
    c = new()
    for name, body in apps.items():
        if not isinstance(body, dict) or "class" not in body:
            raise ConfigError(f"app {name!r}: expected a mapping with 'class' (and 'config')")
        extra = sorted(set(body) - {"class", "config"})
        if extra:
            raise ConfigError(f"app {name!r}: unknown key {extra[0]!r} (expected class, config)")
        app(c, str(name), body["class"], body.get("config"))
    for spec in links:
        link(c, spec)
    check(c)
    return c
