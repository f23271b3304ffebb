"""wordnet: label semantics for devise (WordNet synsets, word vectors, vocabularies, hierarchy).

Never imports Keras; NLTK is imported lazily (only where WordNet itself is read).
"""
