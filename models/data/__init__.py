"""Images in, pixels out: decoding, datasets on disk and the tf.data input pipelines.

- :mod:`~models.data.images`: :func:`load_image`, the one decoder every command uses;
- :mod:`~models.data.datasets`: finding image files, reading a labelled dataset, stratified splits;
- :mod:`~models.data.pipeline`: tf.data pipelines for training and inference, skip-and-report bad files;
- :mod:`~models.data.pil_pipeline`: the same without TensorFlow (Keras PyDatasets, Pillow in worker
  processes) for the other Keras backends;
- :mod:`~models.data.shards`: splitting a file list into N shards for independent processes (``--shard I/N``);
- :mod:`~models.data.headers`: which decoder each file goes to (TensorFlow's or PIL), read from its header;
- :mod:`~models.data.augment`: augmentation recipes by name; :mod:`~models.data.style`: style augmentations.
"""
