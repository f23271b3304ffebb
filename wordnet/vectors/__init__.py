"""Word vectors: loading any format, the offline skip-gram corpus and training, label vectors.

- :mod:`~wordnet.vectors.loading`: read word2vec/GloVe/fastText/gensim files, checksums, defaults;
- :mod:`~wordnet.vectors.words`: word and phrase vectors (case variants, phrase tokens);
- :mod:`~wordnet.vectors.label_text`: a label's vector from its names, definition and hypernyms;
- :mod:`~wordnet.vectors.text_corpus` and :mod:`~wordnet.vectors.gcide`: the offline training text;
- :mod:`~wordnet.vectors.skipgram`: skip-gram training with gensim.
"""
