"""The Python examples users copy: README.md's ```python blocks and the docstring of ``help(devise)``.

The fast tests check every example statically (it compiles; every ``devise.NAME`` it calls is
exported; every keyword it passes is a parameter of that function, or a TrainConfig field).
The slow test runs each example for real in a fresh folder holding the files it names
(``photos/``, ``cat.jpg``, ``holiday/``, ``test/`` ...), on the tiny network of tests/tiny.py
and the tiny word vectors of tests/conftest.py installed as the data home's default
vectors. Only the training settings are substituted (a 32 px MobileNetV2, one epoch), each
substitution asserted to match, so an edited example fails here until this test follows it.
"""
from __future__ import annotations

import ast
import inspect
import re
import shutil
from pathlib import Path

import pytest

import devise

REPO_ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("dog", "cat", "car", "banana")
COLOURS = ("red", "green", "blue", "yellow", "white", "black")
TINY = ('backbone="mobilenet_v2", alpha=0.35, weights="none", image_size=32, hidden_units=8, batch_size=4, '
        'val_split=0.25, bn_images=8, run_eagerly=True, seed=3, pretrain_epochs=0, head_epochs=1, finetune_epochs=0')


def python_blocks(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def readme_blocks() -> list[str]:
    return python_blocks(REPO_ROOT / "README.md")


DOC_PAGES = sorted((REPO_ROOT / "docs").glob("*.md"))  # the depth README.md links to (the ONNX example)


def docstring_example() -> str:
    """The indented ``::`` block of ``devise.__doc__`` (what ``help(devise)`` shows first)."""
    block = devise.__doc__.split("::\n", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return "\n".join(lines).strip() + "\n"


EXAMPLES = {**{f"README block {i + 1}": code for i, code in enumerate(readme_blocks())},
            **{f"docs/{page.name} block {i + 1}": code for page in DOC_PAGES
               for i, code in enumerate(python_blocks(page))},
            "help(devise)": docstring_example()}


def devise_calls(code: str):
    """``(name, [keyword names], lineno)`` of every ``devise.NAME(...)`` call in ``code``."""
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "devise":
            yield node.func.attr, [k.arg for k in node.keywords if k.arg], node.lineno


def test_there_are_examples():
    assert readme_blocks() and any("onnxruntime" in code for code in EXAMPLES.values())
    assert "devise.train(" in EXAMPLES["help(devise)"]


@pytest.mark.parametrize("where", sorted(EXAMPLES))
def test_every_example_calls_exported_functions_with_their_parameters(where):
    code = EXAMPLES[where]
    config_fields = set(inspect.signature(devise.TrainConfig).parameters)
    for name, keywords, line in devise_calls(code):
        assert name in devise.__all__, f"{where} line {line}: devise.{name} is not exported"
        params = inspect.signature(getattr(devise, name)).parameters
        takes_settings = any(p.kind is p.VAR_KEYWORD for p in params.values())
        for k in keywords:
            assert k in params or (takes_settings and k in config_fields), \
                f"{where} line {line}: devise.{name}() takes no {k}="


def test_the_search_function_survives_importing_its_module():
    """``import devise.search`` (or any import of that module) binds the submodule as an attribute of
    the package; the function of the same name must stay what ``devise.search`` is."""
    import devise.search  # the module, bound as an attribute of the package on import

    assert callable(devise.search) and devise.search.__name__ == "search"
    from devise.search import search_labels  # the module's own names still import

    assert devise.search_labels is search_labels


# -- running them ----------------------------------------------------------------------
def substituted(code: str, where: str) -> str:
    """``code`` with its training settings replaced by the tiny network's (each must match once)."""
    patterns = [r'backbone="mobilenet_v2", weights="none",\s*image_size=64, [a-z_=0-9, ]*epochs=\d+']
    for pattern in patterns:
        if "devise.train(" in code:
            code, n = re.subn(pattern, TINY, code)
            assert n == 1, f"{where}: the training settings changed; update {__name__}.substituted"
    return code.replace('"~/Pictures"', '"pictures/"')


@pytest.fixture()
def example_folder(tmp_path, monkeypatch, tiny_kv_file, devise_home):
    """A folder holding every file the examples name, with the tiny vectors as the data home's default."""
    from tests.tiny import png
    from wordnet.vectors.loading import default_vectors_path

    home = tmp_path / "home"
    monkeypatch.setenv("DEVISE_HOME", str(home))
    if (devise_home / "nltk_data").is_dir():  # the session's WordNet, not a second download
        shutil.copytree(devise_home / "nltk_data", home / "nltk_data")
    default_vectors_path().parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_kv_file, default_vectors_path())
    work = tmp_path / "work"
    for split, n in (("photos", 4), ("test", 1)):
        for c, cls in enumerate(CLASSES):
            for i in range(n):
                png(work / split / cls / f"{i}.png", COLOURS[(c + i) % len(COLOURS)])
    for name in ("cat.jpg", "holiday/beach.png", "holiday/dog.png", "pictures/a.png", "chelsea.png"):
        png(work / name, "orange" if "cat" in name or "chelsea" in name else "blue")
    monkeypatch.chdir(work)
    return work


@pytest.mark.slow
@pytest.mark.parametrize("where", sorted(EXAMPLES))
def test_every_example_runs(where, example_folder, capsys):
    code = substituted(EXAMPLES[where], where)
    if "onnxruntime" in code:
        pytest.importorskip("onnxruntime")
        pytest.importorskip("tf2onnx")
        devise.train("photos/", output="runs/pets", **eval(f"dict({TINY})"))
        devise.export("runs/pets", "export/pets", format="onnx", vocab=devise.given_labels("cat, dog, snow leopard"))
    exec(compile(code, f"<{where}>", "exec"), {"__name__": "__example__"})
    out = capsys.readouterr().out
    if "print(" in code:
        assert out.strip(), f"{where} printed nothing"
    if "holiday/" in code:  # the folder was expanded into its images
        assert str(Path("holiday") / "beach.png") in out and "is a folder" not in out


@pytest.mark.parametrize("page", [REPO_ROOT / "README.md", *DOC_PAGES], ids=lambda p: p.name)
def test_the_readme_and_docs_have_no_unfilled_placeholder(page):
    assert re.findall(r"__[A-Z][A-Z_]+__", page.read_text(encoding="utf-8")) == []
