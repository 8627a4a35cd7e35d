"""The package's structure (docs/architecture.md): layers import downwards
only, and no module imports itself back through others (no cycle). Read
from the source with ast, lazy imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import snabbpy
from snabbpy.core.config import cycles

ROOT = Path(snabbpy.__file__).resolve().parent

#: Layer of each top-level part, bottom first; a module may import from its
#: own layer and those below it, never above.
LAYERS = {
    "snabbpy": 0, "snabbpy._native": 0, "snabbpy.core": 0, "snabbpy.native_build": 0,
    "snabbpy.lib": 1,
    "snabbpy.apps": 2,
    "snabbpy.testing": 3, "snabbpy.vm": 3, "snabbpy.workers": 3, "snabbpy.metrics": 3,
    "snabbpy.top": 3, "snabbpy.graph": 3, "snabbpy.bench": 3, "snabbpy.jit": 3,
    "snabbpy.jit_breath": 3,
    "snabbpy.cli": 4, "snabbpy.__main__": 4,
}


def module_name(path: Path) -> str:
    parts = ("snabbpy", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The snabbpy modules ``name`` imports (``from a import b``: a.b when
    that is a module, else a)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m == "snabbpy" or m.startswith("snabbpy.")}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods) | {"snabbpy._native"}
    return {name: imports(name, path, known) - {name} for name, path in mods.items()}


def layer(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS[".".join(parts[:n])]
    raise AssertionError(f"{module}: no layer (add it to LAYERS and docs/architecture.md)")


def may_import(importer: str, imported: str) -> bool:
    """Downwards or sideways; and a package's selftest (a test, run by
    ``snabbpy selftest``) may use the test kit."""
    if layer(imported) <= layer(importer):
        return True
    return imported.startswith("snabbpy.testing") and "selftest" in importer.split(".")


def test_every_module_has_a_layer():
    for name in modules():
        layer(name)


def test_no_module_imports_a_layer_above_its_own():
    upward = sorted(f"{a} -> {b}" for a, deps in graph().items() for b in deps
                    if not may_import(a, b))
    assert upward == []


def test_apps_never_import_vm_or_cli():
    g = graph()
    bad = sorted(f"{a} -> {b}" for a in g if a.startswith("snabbpy.apps.") for b in g[a]
                 if b.startswith(("snabbpy.vm", "snabbpy.cli")))
    assert bad == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycle():
    g = graph()
    assert cycles({m: {d for d in deps if d in g} for m, deps in g.items()}) == []


def test_the_layout_docs_name_every_package():
    """README's Layout and docs/architecture.md name every package (apps by
    their directory, ``pcap/``, or in backticks, ``pcap``)."""
    readme = (ROOT.parent / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    architecture = (ROOT.parent / "docs" / "architecture.md").read_text()
    names = sorted({p.parent.name for p in ROOT.rglob("__init__.py")} - {"snabbpy"})
    missing = [(n, doc) for n in names for doc, text in (("README", layout),
                                                        ("architecture", architecture))
               if f"{n}/" not in text and f"`{n}`" not in text]
    assert missing == []
