"""Exporting a DeViSE model for deployment, through Keras's own export paths.

Two graphs can be exported from a :class:`~models.net.devise_model.DeviseModel`:

* the embedder: RGB images -> ``{"embedding"}`` (unit vectors in the label space);
* the classifier: the embedder followed by :class:`LabelTopK`, the cosine with a fixed
  matrix of unit label vectors and a top-k -> ``{"embedding", "scores", "indices"}``.

Either way the input is ``(batch, size, size, 3)`` float32 RGB in [0, 255]: the backbone's
own scaling (:class:`~models.net.backbones.Preprocess`) is inside the graph; decoding and
the centre-square resize (:func:`models.data.images.load_image`) are the caller's.

Formats (:data:`FORMATS`) map to ``keras.Model.export``: ``savedmodel`` (TensorFlow
SavedModel, signature ``serve``), ``tflite`` (LiteRT flatbuffer, Keras converts with
``tf.lite.TFLiteConverter``) and ``onnx`` (Keras converts with tf2onnx, which must be
installed: ``pip install 'devise[export]'``).
"""
from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path

import keras
import numpy as np
from keras import ops

from models.export_formats import FORMATS
from wordnet.base.errors import DeviseError
from wordnet.vocab import label_matrix


@keras.saving.register_keras_serializable(package="devise")
class LabelTopK(keras.layers.Layer):
    """Unit embeddings -> ``{"embedding", "scores", "indices"}``: cosine with fixed unit label vectors, top ``k``.

    The zero-shot classifier as one matrix product and a top-k (open_clip's recipe), so an
    exported model needs no label code at run time. ``label_vectors`` (n_labels, dim) are
    stored as a constant, unit-normalised.
    """

    def __init__(self, label_vectors, k: int = 5, **kwargs):
        super().__init__(**kwargs)
        vectors = label_matrix(np.asarray(label_vectors, dtype=np.float32))  # unit rows (kept bit for bit if so)
        if not len(vectors):
            raise ValueError("label vectors must be a non-empty (n, dim) matrix")
        self.label_vectors = vectors
        self.k = max(1, min(int(k), len(vectors)))

    def call(self, embedding):
        scores = ops.matmul(ops.cast(embedding, "float32"), ops.convert_to_tensor(self.label_vectors.T))
        values, indices = ops.top_k(scores, self.k)
        return {"embedding": embedding, "scores": values, "indices": ops.cast(indices, "int32")}

    def get_config(self):
        return {**super().get_config(), "label_vectors": self.label_vectors.tolist(), "k": self.k}


def float32_copy(model):
    """``model`` itself when it computes in float32, else a float32 rebuild with its weights (ONNX and
    TFLite want one dtype; a mixed-precision bundle's float16 compute is a training-time choice)."""
    if all(layer.compute_dtype in (None, "float32") for layer in model._flatten_layers()):
        return model
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        copy = model.__class__.from_config(model.get_config())
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def deployable(model, label_vectors=None, k: int = 5):
    """The Keras model to export: images -> ``{"embedding"}``, or with ``label_vectors`` the classifier."""
    model = float32_copy(model)
    image = keras.Input(tuple(model.inputs[0].shape[1:]), name="image")
    embedding = model.embedder(image)
    outputs = ({"embedding": embedding} if label_vectors is None
               else LabelTopK(label_vectors, k, name="labels")(embedding))
    return keras.Model(image, outputs, name="devise_export")


def export_model(model, folder: str | Path, fmt: str, label_vectors=None, k: int = 5) -> Path:
    """Export ``model`` (a DeviseModel) in ``fmt`` into ``folder`` (created); returns the artefact's path."""
    if fmt not in FORMATS:
        raise DeviseError(f"unknown export format {fmt!r}; choose {', '.join(FORMATS)}")
    keras_format, name = FORMATS[fmt]
    if fmt == "onnx":
        try:
            import tf2onnx  # noqa: F401
        except ImportError:
            raise DeviseError("ONNX export needs tf2onnx: pip install 'devise[export]'") from None
    import tensorflow as tf

    net = deployable(model, label_vectors, k)
    size = tuple(net.inputs[0].shape[1:])
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    signature = [tf.TensorSpec((None,) + size, tf.float32, name="image")]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # Keras's tf2onnx patch probes np.object
            net.export(str(target), format=keras_format, verbose=False, input_signature=signature)
    except Exception as exc:  # noqa: BLE001 - a converter failure deep in TF/tf2onnx: one line naming the format
        if exc.__class__.__name__ == "ResourceExhaustedError" and str(folder) in str(exc):  # TF's writer: disk full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder)) from None
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:200]
        raise DeviseError(f"{fmt} export failed ({exc.__class__.__name__}: {first})") from None
    return target
