"""The DeViSE model: backbone + a head that regresses images onto unit word vectors.

Structure (the Keras write-up of DeViSE, sizes configurable)::

    RGB [0,255] -> Preprocess -> backbone (include_top=False) -> Dropout(0.3)
      -> GlobalAveragePooling -> Dense(1024, relu) -> BatchNorm -> Dense(dim) -> L2Normalize
                                 (hidden_units=0: a linear head, Dense(dim) -> L2Normalize)
                             \\-> Dense(num_classes, softmax)      (phase-0 / baseline head)

:class:`DeviseModel` is one functional model built from constructor kwargs, keras-hub
style: ``get_config()`` returns those kwargs (with ``weights=None``, since the saved
file carries the weights), so ``model.keras`` round-trips. The model outputs a dict
``{"embedding": (n, dim) unit vectors, "probs": (n, num_classes)}``; ``.embedder``,
``.classifier``, ``.feature_extractor`` and :meth:`head_on_features` are views that
share its layers, used by the training phases and by bundles.
"""
from __future__ import annotations

import keras
from keras import ops

from models.net.backbones import Preprocess, build_backbone, check_backbone_options, spec_of


@keras.saving.register_keras_serializable(package="devise")
class L2Normalize(keras.layers.Layer):
    """Scale each row to unit L2 norm (computed in float32 even under mixed precision)."""

    def __init__(self, axis: int = -1, epsilon: float = 1e-12, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon

    def call(self, x):
        x = ops.cast(x, "float32")
        norm = ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=self.axis, keepdims=True), self.epsilon))
        return x / norm

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="devise")
class DeviseModel(keras.Model):
    """Backbone + DeViSE head (+ softmax head), one functional model.

    Args:
        backbone: a name from :data:`models.net.backbones.BACKBONES` (default ``resnet50``).
        embedding_dim: dimension of the label vectors (taken from the vocabulary).
        num_classes: size of the softmax head (training classes, vocabulary order).
        weights: ``"imagenet"``, a weights-file path, or ``None``; only used when building.
        image_size: square input side in pixels.
        hidden_units: width of the head's hidden layer (1024); 0 for a linear head (one projection).
        dropout: dropout rate on the backbone's feature map (0.3).
        backbone_options: extra constructor kwargs, e.g. ``{"alpha": 0.5}`` for MobileNetV2.
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        embedding_dim: int = 300,
        num_classes: int = 1,
        weights: str | None = None,
        image_size: int = 224,
        hidden_units: int = 1024,
        dropout: float = 0.3,
        backbone_options: dict | None = None,
        **kwargs,
    ):
        spec = spec_of(backbone)
        backbone_options = check_backbone_options(backbone, backbone_options)
        net = build_backbone(backbone, image_size, weights=weights, options=backbone_options)
        net.name = "backbone"  # stable weight paths whatever keras.applications calls it
        inputs = keras.Input((image_size, image_size, 3), name="image")
        x = Preprocess(spec.preprocess, name="preprocess")(inputs)
        fmap = net(x)
        fmap = keras.layers.Dropout(dropout, name="head_dropout")(fmap)
        pooled = keras.layers.GlobalAveragePooling2D(name="head_pool")(fmap)
        project = keras.layers.Dense(embedding_dim, name="head_projection", dtype="float32")
        unit = L2Normalize(name="embedding")
        softmax = keras.layers.Dense(num_classes, activation="softmax", name="probs", dtype="float32")
        emb = unit(project(self._hidden(pooled, hidden_units)))
        probs = softmax(pooled)
        kwargs.setdefault("name", "devise")
        super().__init__(inputs=inputs, outputs={"embedding": emb, "probs": probs}, **kwargs)
        self.backbone_name = backbone
        self.embedding_dim = int(embedding_dim)
        self.num_classes = int(num_classes)
        self.image_size = int(image_size)
        self.hidden_units = int(hidden_units)
        self.dropout_rate = float(dropout)
        self.backbone_options = dict(backbone_options)
        self.feature_dim = int(pooled.shape[-1])

    @staticmethod
    def _hidden(x, hidden_units: int, layer=None):
        """The head's hidden layer (Dense + ReLU + BatchNorm), or nothing for a linear head (``hidden_units=0``)."""
        if not hidden_units:
            return x
        if layer is None:
            hidden = keras.layers.Dense(hidden_units, activation="relu", name="head_hidden")
            return keras.layers.BatchNormalization(name="head_bn")(hidden(x))
        return layer.get_layer("head_bn")(layer.get_layer("head_hidden")(x))

    # -- views sharing this model's layers ---------------------------------
    @property
    def backbone(self):
        return self.get_layer("backbone")

    @property
    def embedder(self) -> keras.Model:
        """images -> unit embeddings."""
        return keras.Model(self.inputs, self.get_layer("embedding").output, name="devise_embedder")

    @property
    def classifier(self) -> keras.Model:
        """images -> softmax probabilities over the training classes."""
        return keras.Model(self.inputs, self.get_layer("probs").output, name="devise_classifier")

    @property
    def feature_extractor(self) -> keras.Model:
        """images -> pooled backbone features (what phase 1 caches)."""
        return keras.Model(self.inputs, self.get_layer("head_pool").output, name="devise_features")

    def head_on_features(self, dropout: float | None = None) -> keras.Model:
        """pooled features -> {"embedding", "probs"}, sharing the head's layers.

        Dropout acts on the pooled vector here (the cache holds pooled features);
        at inference the result equals the full model's exactly.
        """
        rate = self.dropout_rate if dropout is None else dropout
        feats = keras.Input((self.feature_dim,), name="features")
        x = keras.layers.Dropout(rate, name="feature_dropout")(feats)
        emb = self.get_layer("embedding")(self.get_layer("head_projection")(self._hidden(x, self.hidden_units, self)))
        probs = self.get_layer("probs")(x)
        return keras.Model(feats, {"embedding": emb, "probs": probs}, name="devise_head")

    def get_config(self):
        return {
            "backbone": self.backbone_name,
            "embedding_dim": self.embedding_dim,
            "num_classes": self.num_classes,
            "weights": None,
            "image_size": self.image_size,
            "hidden_units": self.hidden_units,
            "dropout": self.dropout_rate,
            "backbone_options": dict(self.backbone_options),
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_devise(
    backbone: str = "resnet50",
    *,
    embedding_dim: int,
    num_classes: int = 1,
    weights: str | None = "imagenet",
    image_size: int = 224,
    hidden_units: int = 1024,
    dropout: float = 0.3,
    backbone_options: dict | None = None,
) -> DeviseModel:
    """Build a :class:`DeviseModel` (the library entry point; ``weights="imagenet"`` by default)."""
    return DeviseModel(
        backbone=backbone,
        embedding_dim=embedding_dim,
        num_classes=num_classes,
        weights=weights,
        image_size=image_size,
        hidden_units=hidden_units,
        dropout=dropout,
        backbone_options=backbone_options,
    )
