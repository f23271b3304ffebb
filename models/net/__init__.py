"""The network: backbones, the DeViSE model, its loss and metric, inference functions.

- :mod:`~models.net.catalog`: the backbones devise can build, by name (Keras-free);
- :mod:`~models.net.backbones`: ``keras.applications`` backbones by name, preprocessing as a layer;
- :mod:`~models.net.devise_model`: :class:`DeviseModel` (backbone + DeViSE head + softmax head);
- :mod:`~models.net.losses`: the hinge rank loss and hit@k against a label matrix;
- :mod:`~models.net.inference`: compiled and eager ``images -> outputs`` functions.
"""
