"""devise: zero-shot image classification with DeViSE (Frome et al., NeurIPS 2013) — the Python API.

This package is the one layer that joins the image half (:mod:`models`, Keras) and the
label half (:mod:`wordnet`: WordNet, word vectors, vocabularies, scoring); the ``devise``
command line (:mod:`devise_cli`) is a thin Click layer over it. Import from here::

    import devise

    result = devise.train("photos/", output="runs/pets", backbone="mobilenet_v2", weights="none",
                          image_size=64, head_epochs=5, finetune_epochs=0)
    model = devise.load_model("runs/pets")
    vocab, missing, source, vectors = devise.build_vocabulary(synsets="imagenet1k", skip_missing=True)
    for record in devise.predict(["cat.jpg"], model, vocab, top=5):
        print(record["path"], [p["label"] for p in record["predictions"]])
    report = devise.evaluate("test/", model="runs/pets", hierarchical=True)

Names are resolved on first use (PEP 562), so ``import devise`` is instant and loads
neither TensorFlow nor NLTK until a function that needs them is called.

Modules (each light to import; what it hands on from the halves is in its ``_EXPORTS``):

- :mod:`devise.training`: :func:`train`, class names -> WordNet -> label vectors -> a bundle;
- :mod:`devise.pretraining`: :func:`pretrain`, a backbone pre-trained on an icon pool;
- :mod:`devise.synsets`: names -> WordNet synsets: a dataset's class names (training), ``devise wordnet``'s
  lookup and hop splits;
- :mod:`devise.vocabularies`: label vocabularies, word vectors, labels given on the command line;
- :mod:`devise.prediction`: :func:`load_model`, :func:`predict` (the ranking methods), finding and reading images;
- :mod:`devise.default_model`: the default model (ImageNet EfficientNet-Lite0 + a DeViSE head), built on first use;
- :mod:`devise.temperature`: the softmax temperature that makes scores readable;
- :mod:`devise.evaluation`: :func:`evaluate` and result records;
- :mod:`devise.search`: image indexes, their merging, and search by word, synset or image;
- :mod:`devise.deployment`: :func:`export` (SavedModel, TFLite, ONNX);
- :mod:`devise.datasets`: the offline benchmark dataset builders (``devise data``);
- :mod:`devise.files`: atomic writes (reports, pages);
- :mod:`devise._lazy`: names resolved on first use; :mod:`devise._packages`: ``models`` and
  ``wordnet`` bound to devise's own packages whatever the working directory holds.
"""
from __future__ import annotations

import sys as _sys
import types as _types

from devise._lazy import lazy_exports as _lazy_exports
from devise._packages import bind as _bind

_bind()  # `models` and `wordnet` are devise's own packages, whatever the working directory holds

from wordnet.base.version import __version__  # noqa: E402

# public name -> the module that defines it (one place; tests/test_layering.py parses this)
_EXPORTS = {
    # training
    "train": "devise.training",
    "pretrain": "devise.pretraining",
    "TrainConfig": "models.training.config",
    "TrainResult": "models.training.train",
    "Reporter": "models.training.reporter",
    # models
    "load_model": "devise.prediction",
    "Bundle": "models.bundle",
    # vocabularies and vectors
    "build_vocabulary": "devise.vocabularies",
    "nearest_labels": "devise.vocabularies",
    "load_vocabulary": "devise.vocabularies",
    "Vocabulary": "wordnet.vocab",
    "load_vectors": "wordnet.vectors.loading",
    "train_vectors": "devise.vocabularies",
    # the default model (ImageNet backbone + DeViSE head, built offline on first use)
    "ensure_default_model": "devise.default_model",
    "build_default_model": "devise.default_model",
    "default_model_path": "devise.default_model",
    # predict, evaluate
    "METHODS": "wordnet.scoring",
    "predict": "devise.prediction",
    "score_temperature": "devise.temperature",
    "evaluate": "devise.evaluation",
    "given_labels": "devise.vocabularies",
    "GivenLabels": "devise.vocabularies",
    # deployment
    "export": "devise.deployment",
    # image search
    "index_images": "devise.search",
    "merge_indexes": "devise.search",
    "search": "devise.search",
    "search_labels": "devise.search",
    "ImageIndex": "models.index.store",
    "IndexFile": "models.index.store",
    "Shard": "models.data.shards",
    # errors (every one a DeviseError)
    "DeviseError": "wordnet.base.errors",
    "UsageError": "wordnet.base.errors",
    "DatasetError": "wordnet.base.errors",
    "ImageError": "wordnet.base.errors",
}

__all__ = ["__version__", *_EXPORTS]


class _Package(_types.ModuleType):
    """The ``devise`` module's type: an exported function keeps its name when a submodule of that name loads.

    Importing ``devise.search`` (the module) makes Python bind it as the package attribute
    ``search``, which would hide the function ``devise.search``; here the function is bound instead.
    """

    def __setattr__(self, name, value):
        if isinstance(value, _types.ModuleType) and value.__name__ == f"{__name__}.{name}" and name in _EXPORTS:
            value = getattr(value, name)
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


__getattr__ = _lazy_exports(__name__, _EXPORTS)


def __dir__():
    return sorted(__all__)
