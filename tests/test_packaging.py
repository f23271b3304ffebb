"""The package configuration: data folders are packages of their own, so builds do not warn.

setuptools warns (about 40 lines each, on every install) when a folder that ships files,
such as ``wordnet/data``, is not itself in ``packages`` ("Package would be ignored").
"""
from __future__ import annotations

from pathlib import Path

from setuptools.config.setupcfg import read_configuration

REPO = Path(__file__).resolve().parents[1]


def test_every_folder_that_ships_data_is_a_package():
    options = read_configuration(REPO / "setup.cfg", find_others=True)["options"]
    packages = set(options["packages"])
    assert {"wordnet.data", "models.net.weights", "devise", "devise_cli", "models.net"} <= packages
    assert not any("__pycache__" in p for p in packages)
    for package, patterns in options["package_data"].items():
        assert package in packages, package
        assert not any("/" in p for p in patterns), f"{package}: {patterns} reaches into a sub-folder"
        folder = REPO / package.replace(".", "/")
        assert any(f for p in patterns for f in folder.glob(p)), f"{package}: {patterns} match nothing"
