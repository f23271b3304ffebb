"""models: everything Keras in devise.

- :mod:`models.net`: backbones, the DeViSE model, hinge rank loss, inference;
- :mod:`models.training`: the training phases, configuration, callbacks, feature cache;
- :mod:`models.data`: image decoding, datasets on disk, tf.data pipelines;
- :mod:`models.bundle`: the model bundle folder that ``train`` writes and the rest reads;
- :mod:`models.imagenet_bundle`: a bundle assembled from an ImageNet classifier backbone (the default model's body);
- :mod:`models.index`: image indexes for search;
- :mod:`models.export`: exporting a model (SavedModel, TFLite, ONNX); :mod:`models.export_formats`:
  the formats' names, Keras-free for ``--help``.

Never imports click or nltk (``tests/test_layering.py`` checks it).
"""
