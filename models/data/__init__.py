"""Images in, pixels out: decoding, datasets on disk and the input a training run reads.

- :mod:`~models.data.images`: :func:`load_image`, the one decoder every command uses;
- :mod:`~models.data.datasets`: finding image files, reading a labelled dataset, stratified splits;
- :mod:`~models.data.inputs`: the input seam, one implementation chosen per run from the Keras backend;
- :mod:`~models.data.tfdata`: that implementation on TensorFlow (tf.data pipelines, skip-and-report bad files);
- :mod:`~models.data.pydataset`: that implementation elsewhere (Keras PyDatasets, Pillow in worker
  processes) for JAX and machines without TensorFlow;
- :mod:`~models.data.failures`: the run's log of images that would not decode, and how a failure is worded;
- :mod:`~models.data.feature_file`: the feature cache's HDF5 file (layout, float16 rows, block reads);
- :mod:`~models.data.shards`: splitting a file list into N shards for independent processes (``--shard I/N``);
- :mod:`~models.data.headers`: which decoder each file goes to (TensorFlow's or PIL), read from its header;
- :mod:`~models.data.augment`: augmentation recipes by name; :mod:`~models.data.style`: style augmentations.
"""
