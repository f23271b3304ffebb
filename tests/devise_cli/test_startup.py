"""`devise --help` must stay instant: no numpy, TensorFlow, Keras, gensim, NLTK or h5py on its path."""
from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("numpy", "tensorflow", "keras", "gensim", "nltk", "h5py")


def test_help_imports_nothing_heavy():
    code = ("import sys, json\n"
            "from devise_cli.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    *help_text, loaded = res.stdout.splitlines()
    assert "Commands:" in "\n".join(help_text) and "train" in "\n".join(help_text)
    assert json.loads(loaded) == []
