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
import stat
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
        """Checks and converts a value given for this key. ``null`` is
        accepted only by a key without a type or whose default is None."""
        t = self.type
        if t is None:
            return value
        if value is None:
            if self.default is None:
                return None
            raise ValueError("got null, expected a value")
        if t is bool:
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {short(value)}")
            return value
        if t in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"expected a number, got {short(value)}")
            if t is int and value != int(value):
                raise ValueError(f"expected an integer, got {short(value)}")
            return t(value)
        if t in (str, list, dict):
            if not isinstance(value, t):
                raise ValueError(f"expected a {t.__name__}, got {short(value)}")
            return value
        try:
            return t(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(short(str(exc), 120)) from None


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: an error message never
    prints a huge value (an alias bomb, a pasted file)."""
    text = value if isinstance(value, str) and limit > 60 else repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


#: App and port names: ASCII letters, digits, '_' and '-', at most this many,
#: so that a link's counter file name ("a.out->b.in", see core/counter.py)
#: stays well under the 255 bytes a file name may have.
NAME_MAX = 60
NAME = re.compile(rf"[A-Za-z0-9_-]{{1,{NAME_MAX}}}")


def check_name(kind: str, name: Any) -> None:
    """Refuses an app or port name that cannot be a counter path."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(
            f"{kind} name {short(name)}: use 1 to {NAME_MAX} ASCII letters, digits, '_' and '-'"
        )


LINK_SPEC = re.compile(r"^\s*([\w-]+)\.([\w-]+)\s*->\s*([\w-]+)\.([\w-]+)\s*$")

#: The port declaration of an app that takes any number of ports, any names.
ANY = "any"


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
        raise ConfigError(f"link {short(spec)}: malformed, expected 'app.port -> app.port'")
    ls = LinkSpec(*m.groups())
    for app_name in (ls.from_app, ls.to_app):
        check_name("app", app_name)
    for port in (ls.from_port, ls.to_port):
        try:
            check_name("port", port)
        except ConfigError as exc:
            raise ConfigError(f"link {short(spec)}: {exc}") from None
    return ls


@dataclass
class AppSpec:
    """One app of a configuration: its class and validated configuration."""

    cls: type
    conf: dict[str, Any]
    class_name: str = ""
    #: the worker process it runs in (None: the main process); see snabbpy.workers
    worker: str | None = None


@dataclass
class Config:
    """A whole graph: apps by name and the set of links."""

    apps: dict[str, AppSpec] = field(default_factory=dict)
    links: dict[str, LinkSpec] = field(default_factory=dict)
    #: worker name -> its settings (``cpu``); see snabbpy.workers.placement
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)


def new() -> Config:
    """An empty configuration."""
    return Config()


def resolve_class(name: str) -> type:
    """Finds an app class: ``"basic.Source"`` is a built-in (in
    ``snabbpy.apps.basic``), ``"mypkg.apps:Counter"`` a user's own."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"app class {short(name)}: expected a name like 'basic.Source'")
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
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(f"app class {name!r}: no module {exc.name!r}") from None
        raise ConfigError(f"app class {name!r}: module {module_name!r}: {_import_error(exc)}") \
            from None
    except SyntaxError as exc:
        where = f"{exc.filename}, line {exc.lineno}"
        raise ConfigError(
            f"app class {name!r}: module {module_name!r} ({where}): SyntaxError: {exc.msg}"
        ) from None
    except Exception as exc:  # a user's module raising at import
        raise ConfigError(f"app class {name!r}: module {module_name!r}: {_import_error(exc)}") \
            from None
    cls = getattr(module, attr, None)
    if not isinstance(cls, type):
        raise ConfigError(f"app class {name!r}: module {module_name!r} has no class {attr!r}")
    return cls


def _import_error(exc: BaseException) -> str:
    """The error a module raised at import, with the module's own line."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if "importlib" not in f.filename] or frames
    at = f" ({user[-1].filename}, line {user[-1].lineno})" if user else ""
    return f"{type(exc).__name__}: {short(str(exc), 200)}{at}"


def validate(app_name: str, cls: type, conf: Any) -> dict[str, Any]:
    """Checks ``conf`` against the keys ``cls`` declares; fills defaults."""
    params: dict[str, Param] = getattr(cls, "config", {}) or {}
    conf = {} if conf is None else conf
    if not isinstance(conf, dict):
        raise ConfigError(f"app {app_name!r}: config must be a mapping, got {short(conf)}")
    where = f"app {app_name!r} ({cls.__name__})"
    unknown = sorted(set(conf) - set(params))
    if unknown:
        known = ", ".join(sorted(params)) or "none"
        raise ConfigError(
            f"{where}: unknown config key {short(unknown[0])} (known keys: {known})"
        )
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


def app(c: Config, name: str, cls: type | str, conf: dict[str, Any] | None = None,
        worker: str | None = None) -> None:
    """Adds (or replaces) app ``name`` of class ``cls`` with ``conf``, to run
    in worker process ``worker`` (None: the main process)."""
    check_name("app", name)
    if worker is not None:
        try:
            check_name("worker", worker)
        except ConfigError as exc:
            raise ConfigError(f"app {name!r}: {exc}") from None
    if not isinstance(cls, (str, type)):
        raise ConfigError(f"app {name!r}: class {short(cls)}: expected a name like 'basic.Source'")
    class_name = cls if isinstance(cls, str) else f"{cls.__module__}:{cls.__qualname__}"
    klass = resolve_class(cls) if isinstance(cls, str) else cls
    c.apps[name] = AppSpec(klass, validate(name, klass, conf), class_name, worker)


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


def ports_of(cls: type, direction: str) -> Any:
    """The ports class ``cls`` declares in ``direction`` ("inputs" or
    "outputs"): a tuple of names, ``ANY``, or None (declares nothing)."""
    return getattr(cls, direction, None)


def _check_port(c: Config, ls: LinkSpec, app_name: str, port: str, direction: str) -> None:
    spec = c.apps[app_name]
    ports = ports_of(spec.cls, direction)
    if ports is None or ports == ANY or port in ports:
        return
    kind = direction[:-1]  # "input" / "output"
    where = f"app {app_name!r} ({spec.cls.__name__})"
    if not ports:
        raise ConfigError(f"link '{ls}': {where} has no {kind} ports")
    raise ConfigError(
        f"link '{ls}': {where} has no {kind} port {port!r} "
        f"(its {kind} ports: {', '.join(ports)})"
    )


def _file_uses(name: str, spec: AppSpec) -> list[tuple[str, str]]:
    """The files app ``name`` says it reads ("r") and writes ("w"):
    ``files(conf)`` on its class returns (mode, path) pairs."""
    files = getattr(spec.cls, "files", None)
    return [(mode, str(path)) for mode, path in (files(spec.conf) if files else [])]


def _check_files(c: Config) -> None:
    """Refuses a FIFO given to an app that reads a file (reading it would
    block the engine) and two apps of which one writes a file the other
    reads or writes (the writer would destroy it)."""
    seen: dict[tuple[int, int] | str, tuple[str, str]] = {}
    for name, spec in c.apps.items():
        for mode, path in _file_uses(name, spec):
            where = f"app {name!r} ({spec.cls.__name__})"
            try:
                st = os.stat(path)
            except OSError:
                key: tuple[int, int] | str = os.path.realpath(path)
            else:
                if mode == "r" and stat.S_ISFIFO(st.st_mode):
                    raise ConfigError(f"{where}: {path!r} is a FIFO: reading it would block "
                                      "the engine (give a regular file)")
                key = (st.st_dev, st.st_ino)
            if key in seen:
                other, other_mode = seen[key]
                if "w" in (mode, other_mode):
                    raise ConfigError(f"{other} and {where} use the same file {path!r}, and "
                                      "one writes it: the input would be destroyed")
            seen[key] = (where, mode)


def check(c: Config) -> None:
    """Checks that every link joins apps of the configuration, at ports
    they have, and that no two apps fight over a file."""
    for ls in c.links.values():
        for end in (ls.from_app, ls.to_app):
            if end not in c.apps:
                raise ConfigError(f"link '{ls}': no app named {end!r}")
        _check_port(c, ls, ls.from_app, ls.from_port, "outputs")
        _check_port(c, ls, ls.to_app, ls.to_port, "inputs")
    _check_files(c)


#: The worker name of the main process (apps without ``worker``).
MAIN = "main"


def check_worker(c: Config, worker: str | None) -> None:
    """Refuses an app of another worker than ``worker`` (None: the main
    process): an Engine runs one process, and a graph with ``worker:``
    keys needs the supervisor to spread it, not to run it all here."""
    here = {None, MAIN, worker}
    for name, spec in c.apps.items():
        if spec.worker not in here:
            raise ConfigError(
                f"app {name!r} is on worker {spec.worker!r}, and an Engine runs one process: "
                "run a graph with workers with `snabbpy run`, or from Python with "
                "snabbpy.workers.supervisor.Supervisor(engine).configure(c)")


def warnings(c: Config) -> list[str]:
    """What loads but is likely a mistake (Snabb allows both): an app with
    no links, and a cycle no packet can leave (packets stuck forever)."""
    result = []
    linked = {a for ls in c.links.values() for a in (ls.from_app, ls.to_app)}
    for name in c.apps:
        if name not in linked and len(c.apps) > 1:
            result.append(f"app {name!r} has no links")
    out: dict[str, set[str]] = {a: set() for a in c.apps}
    for ls in c.links.values():
        out[ls.from_app].add(ls.to_app)
    for group in cycles(out):
        leaves = any(b not in group for a in group for b in out[a])
        if not leaves:
            names = ", ".join(repr(a) for a in sorted(group))
            result.append(f"apps {names} form a cycle no packet can leave")
    return result


def cycles(out: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected groups with a cycle (Tarjan's algorithm) in the
    graph ``out`` (node -> the nodes it points to)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in out[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1 or v in out[v]:
                groups.append(group)

    for v in out:
        if v not in index:
            visit(v)
    return groups


#: Most nodes a YAML graph may expand to (aliases counted as copies).
YAML_MAX_NODES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and alias bombs."""

    def construct_mapping(self, node, deep=False):  # noqa: ANN001 - PyYAML's API
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key in seen:
                raise ConfigError(
                    f"duplicate key {short(key)} at line {key_node.start_mark.line + 1} "
                    f"(first at line {seen[key]})"
                )
            if key is not None:
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes ``node`` stands for once every alias is expanded."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once
    if isinstance(node, yaml.SequenceNode):
        n = 1 + sum(_expanded_size(v, memo) for v in node.value)
    elif isinstance(node, yaml.MappingNode):
        n = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        n = 1
    memo[id(node)] = n
    return n


def _parse_yaml(text: str) -> Any:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, {}) > YAML_MAX_NODES:
            raise ConfigError(f"more than {YAML_MAX_NODES:,} values once aliases are expanded "
                              "(an alias bomb?)")
        return loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def load_yaml(path: str | Path) -> Config:
    """Loads a YAML graph (``apps:`` mapping, ``links:`` list); errors name
    the file. A user's app modules may sit next to the file or in the
    current directory: both are put on the import path."""
    path = Path(path)
    for directory in (str(path.resolve().parent), os.getcwd()):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}, line {line})") from None
    try:
        doc = _parse_yaml(text)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
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
    unknown = sorted(set(doc) - {"apps", "links", "workers"})
    if unknown:
        raise ConfigError(f"unknown top-level key {short(unknown[0])} "
                          "(expected 'apps', 'links' and 'workers')")
    apps, links = doc.get("apps") or {}, doc.get("links") or []
    if not isinstance(apps, dict):
        raise ConfigError("'apps' must be a mapping of app name to {class, config}")
    if not isinstance(links, list):
        raise ConfigError("'links' must be a list of 'app.port -> app.port'")
    c = new()
    for name, body in apps.items():
        check_name("app", name)
        if not isinstance(body, dict) or "class" not in body:
            raise ConfigError(f"app {name!r}: expected a mapping with 'class' (and 'config')")
        extra = sorted(set(body) - {"class", "config", "worker"})
        if extra:
            raise ConfigError(f"app {name!r}: unknown key {short(extra[0])} "
                              "(expected class, config, worker)")
        app(c, name, body["class"], body.get("config"), body.get("worker"))
    for spec in links:
        if isinstance(spec, str) and str(parse_link(spec)) in c.links:
            raise ConfigError(f"link '{parse_link(spec)}' is given twice")
        link(c, spec)
    c.workers = _workers(doc.get("workers"))
    check(c)
    return c


def _workers(doc: Any) -> dict[str, dict[str, Any]]:
    """The ``workers:`` mapping, its shape checked (worker name -> {cpu:
    N}); whether a cpu exists is for snabbpy.workers to say."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError("'workers' must be a mapping of worker name to {cpu: N}")
    result = {}
    for name, body in doc.items():
        check_name("worker", name)
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise ConfigError(f"worker {name!r}: expected a mapping like {{cpu: 1}}")
        extra = sorted(set(body) - {"cpu"})
        if extra:
            raise ConfigError(f"worker {name!r}: unknown key {short(extra[0])} (expected cpu)")
        cpu = body.get("cpu")
        if cpu is not None and (isinstance(cpu, bool) or not isinstance(cpu, int) or cpu < 0):
            raise ConfigError(f"worker {name!r}: cpu {short(cpu)}: expected a CPU number")
        result[name] = dict(body)
    return result
