"""wordnet: the label half of devise, and the shared primitives every package uses.

- :mod:`wordnet.base`: errors, safe file writes and locks, the data home, the version;
- :mod:`wordnet.reader`: WordNet 3.0 offline (NLTK's reader over Debian's files);
- :mod:`wordnet.labels`, :mod:`wordnet.hierarchy`, :mod:`wordnet.query`: labels -> synsets,
  the hypernym hierarchy and hop splits, text queries;
- :mod:`wordnet.vectors`: word vectors, skip-gram training, label vectors;
- :mod:`wordnet.vocab`, :mod:`wordnet.vocab_build`, :mod:`wordnet.ann`: label vocabularies,
  building them, approximate nearest-vector search; :mod:`wordnet.label_vocab`: vocabularies
  of labels given where they are used (``--labels``), cached;
- :mod:`wordnet.scoring`: metrics and the evaluation report;
- :mod:`wordnet.datasets`: the offline benchmark dataset builders.

Never imports Keras, TensorFlow or :mod:`models`; NLTK is imported lazily, only where WordNet
itself is read (``tests/test_layering.py`` checks it).
"""
