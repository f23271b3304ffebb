"""The public Python API: ``import devise`` is light, its names resolve, and it works from any folder.

The implementation packages have generic names (``models``, ``wordnet``); a folder called
``models/`` (where ML projects keep trained models) in the working directory must not
shadow them, neither for the CLI nor for a script that imports devise.
"""
from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import devise

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_every_public_name_resolves():
    for name in devise.__all__:
        assert getattr(devise, name) is not None, name
    assert devise.__version__ == __import__("importlib.metadata").metadata.version("devise")
    with pytest.raises(AttributeError):
        devise.no_such_thing  # noqa: B018


def test_import_devise_loads_no_framework():
    code = "import sys, devise; print(json.dumps(sorted(m for m in ('tensorflow', 'keras', 'nltk', 'gensim', " \
           "'numpy', 'h5py') if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_every_api_module_imports_light_and_its_handed_on_names_resolve():
    """The CLI imports only from devise; its modules must stay light and every ``_EXPORTS`` name must exist."""
    code = ("import importlib, json, pkgutil, sys, devise\n"
            "mods = [importlib.import_module('devise.' + m.name) for m in pkgutil.iter_modules(devise.__path__)]\n"
            "heavy = sorted(m for m in ('tensorflow', 'keras', 'nltk', 'gensim', 'numpy', 'h5py', 'PIL')"
            " if m in sys.modules)\n"
            "tables = {m.__name__: sorted(m._EXPORTS) for m in mods if hasattr(m, '_EXPORTS')}\n"
            "print(json.dumps([heavy, tables]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, tables = json.loads(out.stdout)
    assert heavy == []
    assert {"devise.synsets", "devise.datasets", "devise.vocabularies", "devise.training"} <= set(tables)
    for module, names in tables.items():
        mod = importlib.import_module(module)
        for name in names:
            assert getattr(mod, name) is not None, (module, name)
        with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):
            mod.no_such_thing  # noqa: B018


@pytest.fixture()
def shadowing_folder(tmp_path):
    """A working directory holding models/ (a folder of bundles) and wordnet/ (a data folder)."""
    (tmp_path / "models" / "pets").mkdir(parents=True)
    (tmp_path / "models" / "pets" / "config.json").write_text("{}")
    (tmp_path / "wordnet").mkdir()
    (tmp_path / "wordnet" / "notes.txt").write_text("not code")
    return tmp_path


def test_a_script_beside_a_models_folder_gets_devise_s_packages(shadowing_folder):
    script = shadowing_folder / "bare.py"
    script.write_text("import devise\nimport models, wordnet\nfrom models.net.catalog import backbone_names\n"
                      "from wordnet.base.errors import DeviseError\n"
                      "print(models.__file__)\nprint(wordnet.__file__)\nprint(devise.TrainConfig().backbone)\n")
    out = subprocess.run([sys.executable, str(script)], cwd=shadowing_folder, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [str(REPO_ROOT / "models" / "__init__.py"),
                                       str(REPO_ROOT / "wordnet" / "__init__.py"), "resnet50"]


def test_the_cli_runs_beside_a_models_folder(shadowing_folder):
    exe = __import__("pathlib").Path(sys.executable).with_name("devise")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "devise_cli.cli"]
    out = subprocess.run(cmd + ["wordnet", "lookup", "n02084071", "--json"], cwd=shadowing_folder,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["synset"] == "dog.n.01"


def test_a_foreign_package_imported_first_is_named(tmp_path):
    (tmp_path / "wordnet").mkdir()
    (tmp_path / "wordnet" / "__init__.py").write_text("")
    code = "import wordnet\nimport devise\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        f"devise._packages.ShadowedPackageError: a package named 'wordnet' from {tmp_path / 'wordnet' / '__init__.py'} "
        f"was imported before devise; devise needs its own 'wordnet' ({REPO_ROOT / 'wordnet'}): import devise "
        f"first, or rename that package")
