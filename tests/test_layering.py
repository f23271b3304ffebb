"""The architecture, checked from source alone: no import cycles, no import across a forbidden direction.

The layers, bottom to top::

    wordnet.base            errors, safe files and locks, data home, version (stdlib only)
    wordnet | models        the label half (never Keras) | the image half (never click or NLTK)
    devise                  the public API: the one layer that joins both halves (never click)
    devise_cli              Click glue over devise only (never models or wordnet; no library module imports it)

Every ``import`` and ``from ... import`` in every module is read with :mod:`ast` (nothing is
imported or executed), function-level imports included, plus the lazy tables that
name modules as strings (``devise._EXPORTS``, ``devise_cli.cli.COMMANDS``).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("wordnet", "models", "devise", "devise_cli")
# module-level dicts whose values are "module" or "module:attr"
LAZY_TABLES = ("_EXPORTS", "COMMANDS", "IMPLEMENTATIONS")

# importer prefix -> import prefixes it must never import, and why
FORBIDDEN = [
    ("wordnet", ("keras", "tensorflow", "models", "devise", "devise_cli", "click", "jax", "torch"),
     "the label half never imports Keras, the image half, the API or the CLI"),
    ("models", ("click", "nltk", "devise", "devise_cli"),
     "the image half never imports click, NLTK, the API or the CLI"),
    ("devise", ("click", "devise_cli"), "the API never imports click or the CLI"),
    ("devise_cli", ("models", "wordnet"), "the CLI goes through the devise API, never around it"),
]
BASE = "wordnet.base"  # the bottom layer: the standard library and platformdirs only


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(path: Path, root: Path) -> list[tuple[str, int, bool]]:
    """``(imported dotted name, line, maybe)`` for every import in the file, wherever it stands.

    ``maybe``: ``from pkg import name`` also yields ``pkg.name``, which is an import only
    when ``pkg.name`` is a module (the caller knows which modules exist).
    """
    module = module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno, False) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path.name == "__init__.py", node.level, node.module) if node.level \
                else node.module
            # `from pkg import mod` imports pkg.mod when that is a module; otherwise names in pkg
            found += [(f"{target}.{a.name}", node.lineno, True) for a in node.names if a.name != "*"]
            found.append((target, node.lineno, False))
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and any(
                isinstance(t, ast.Name) and t.id in LAZY_TABLES for t in node.targets):
            found += [(v.value.split(":")[0], node.lineno, False) for v in node.value.values
                      if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return found


def source_modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))
            if "__pycache__" not in p.parts}


def import_graph(root: Path) -> tuple[dict[str, set[str]], list[tuple[str, str, int]]]:
    """Edges between devise's own modules, and every (importer, imported, line) for the direction checks."""
    modules = source_modules(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    every = []
    for mod, path in modules.items():
        for name, line, maybe in imports_of(path, root):
            if maybe and name not in modules:
                continue
            every.append((mod, name, line))
            if name in modules and name != mod:
                graph[mod].add(name)
    return graph, every


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def direction_violations(root: Path) -> list[str]:
    _, every = import_graph(root)
    bad = []
    for importer, name, line in every:
        where = f"{source_modules(root)[importer].relative_to(root)}:{line}"
        for layer, banned, why in FORBIDDEN:
            if _within(importer, layer) and any(_within(name, b) for b in banned):
                bad.append(f"{where}: {importer} imports {name} ({why})")
        if _within(importer, BASE):
            ours = name.split(".")[0] in PACKAGES
            if (ours and not _within(name, BASE)) or name.split(".")[0] in ("numpy", "h5py", "nltk", "keras"):
                bad.append(f"{where}: {importer} imports {name} (wordnet.base is the bottom layer)")
    return sorted(set(bad))


# what each half must not reach even through other devise modules (e.g. models -> wordnet.labels -> nltk)
TRANSITIVE = [("models", ("click", "nltk")), ("wordnet", ("keras", "tensorflow", "click"))]


def reached(root: Path) -> dict[str, set[str]]:
    """Module -> the outside top-level packages it imports, directly or through devise's own modules."""
    graph, every = import_graph(root)
    direct = {m: set() for m in graph}
    for importer, name, _ in every:
        if name.split(".")[0] not in PACKAGES:
            direct[importer].add(name.split(".")[0])
    out = {}
    for start in graph:
        seen, todo, found = {start}, [start], set()
        while todo:
            m = todo.pop()
            found |= direct[m]
            for n in graph[m] - seen:
                seen.add(n)
                todo.append(n)
        out[start] = found
    return out


def test_no_half_reaches_what_it_must_not_even_indirectly():
    bad = [f"{m} reaches {sorted(found & set(banned))}" for m, found in reached(ROOT).items()
           for layer, banned in TRANSITIVE if _within(m, layer) and found & set(banned)]
    assert bad == []


def test_no_import_cycles_between_modules():
    graph, _ = import_graph(ROOT)
    assert len(graph) > 60  # every module was read
    assert find_cycles(graph) == []


def test_no_import_across_a_forbidden_direction():
    assert direction_violations(ROOT) == []


def make_tree(root: Path, files: dict[str, str]) -> None:
    """A source tree under ``root``: every package (and each folder of ``files``) with an ``__init__.py``."""
    for pkg in PACKAGES:
        (root / pkg).mkdir()
        (root / pkg / "__init__.py").write_text("")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(text)


def test_the_checks_catch_what_they_claim_to(tmp_path):
    """A tree with a lazy cycle and a Keras import in the label half is caught (the checks can fail)."""
    make_tree(tmp_path, {"models/a.py": "def f():\n    from models import b\n", "models/b.py": "from .a import f\n",
                         "wordnet/c.py": "def g():\n    import keras\n",
                         "devise/__init__.py": '_EXPORTS = {"x": "devise_cli.y"}\n',
                         "devise_cli/d.py": "def h():\n    from wordnet.labels import wnid_of\n"})
    graph, _ = import_graph(tmp_path)
    assert find_cycles(graph) == [["models.a", "models.b"]]
    assert direction_violations(tmp_path) == [
        "devise/__init__.py:1: devise imports devise_cli.y (the API never imports click or the CLI)",
        "devise_cli/d.py:2: devise_cli.d imports wordnet.labels (the CLI goes through the devise API, never "
        "around it)",
        "wordnet/c.py:2: wordnet.c imports keras (the label half never imports Keras, the image half, the API "
        "or the CLI)",
    ]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_folder_is_a_package(package):
    """No folder of code without ``__init__.py`` (setup.cfg's find: would leave it out of the wheel)."""
    for folder in (ROOT / package).rglob("*"):
        if folder.is_dir() and any(folder.glob("*.py")) and "__pycache__" not in folder.parts:
            assert (folder / "__init__.py").is_file(), folder


def package_maps(root: Path) -> dict[str, list[str]]:
    """Package -> its modules and sub-packages that its ``__init__`` docstring does not name (dotted, in full)."""
    out = {}
    inits = (p for pkg in PACKAGES for p in (root / pkg).rglob("__init__.py") if "__pycache__" not in p.parts)
    for init in sorted(inits):
        package = module_name(init, root)
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        children = {p.stem for p in init.parent.glob("*.py") if p.name != "__init__.py"}
        children |= {d.name for d in init.parent.iterdir() if (d / "__init__.py").is_file()}
        out[package] = sorted(c for c in children
                              if not re.search(rf"(?<![\w.]){re.escape(f'{package}.{c}')}(?!\w)", doc))
    return out


def test_every_package_docstring_maps_its_modules():
    """The package docstrings are the module map: a new module is named in its package's, with its job."""
    maps = package_maps(ROOT)
    assert {"devise", "devise_cli", "models", "models.training", "wordnet", "wordnet.datasets"} <= set(maps)
    assert {package: missing for package, missing in maps.items() if missing} == {}


def test_the_map_check_catches_an_unnamed_module(tmp_path):
    (tmp_path / "models" / "net").mkdir(parents=True)
    (tmp_path / "models" / "__init__.py").write_text('"""- :mod:`models.net`: the network."""\n')
    (tmp_path / "models" / "net" / "__init__.py").write_text('"""- :mod:`~models.net.losses`: the loss."""\n')
    for name in ("losses", "losses_old", "catalog"):
        (tmp_path / "models" / "net" / f"{name}.py").write_text("")
    assert package_maps(tmp_path)["models.net"] == ["catalog", "losses_old"]
    assert package_maps(tmp_path)["models"] == []


# the input seam: training reads images only through models.data.inputs; the phases never ask for the backend
SEAM_USERS = ("models.training",)
NEVER_ASK = ("models.training.phases", "models.training.feature_cache")
INPUT_IMPLEMENTATIONS = ("models.data.tfdata", "models.data.pydataset")


def seam_violations(root: Path) -> list[str]:
    """Where a training module imports an input implementation, or a phase asks which Keras backend runs."""
    bad = []
    _, every = import_graph(root)
    modules = source_modules(root)
    for importer, name, line in every:
        if any(_within(importer, u) for u in SEAM_USERS) and any(_within(name, i) for i in INPUT_IMPLEMENTATIONS):
            bad.append(f"{modules[importer].relative_to(root)}:{line}: imports {name} (use models.data.inputs)")
    for mod, path in modules.items():
        if mod in NEVER_ASK:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and node.attr == "backend" \
                        and isinstance(node.value, ast.Attribute) and node.value.attr == "backend":
                    bad.append(f"{path.relative_to(root)}:{node.lineno}: asks keras.backend.backend() (the input "
                               f"seam chooses once)")
    return sorted(bad)


def test_training_reads_images_only_through_the_input_seam():
    assert seam_violations(ROOT) == []


def test_the_seam_check_catches_a_phase_that_asks_the_backend(tmp_path):
    make_tree(tmp_path, {"models/data/pydataset.py": "", "models/training/phases.py": (
        "import keras\n\ndef f():\n    from models.data.pydataset import x\n    return keras.backend.backend()\n")})
    assert seam_violations(tmp_path) == [
        "models/training/phases.py:4: imports models.data.pydataset (use models.data.inputs)",
        "models/training/phases.py:5: asks keras.backend.backend() (the input seam chooses once)",
    ]
