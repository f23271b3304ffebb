"""Scoring a model's outputs against label vocabularies (no Keras, no WordNet reader here).

- :mod:`~wordnet.scoring.metrics`: hit@k, hierarchical precision@k, ConSE, bootstrap intervals,
  calibrated stacking;
- :mod:`~wordnet.scoring.evaluation`: the settings ``devise eval`` reports (given, zero-shot,
  generalised zero-shot, splits), as one JSON-ready report;
- :mod:`~wordnet.scoring.results`: flat result records of a report, and merged tables of many runs.
"""

# How an image is ranked against candidate labels (numpy-free, for the CLI's choices):
# devise   - the DeViSE head's embedding (the paper);
# conse    - ConSE (Norouzi et al. 2014): the softmax's top-T classes' label vectors, probability-weighted;
# combined - the unit DeViSE and unit ConSE embeddings averaged (:func:`~wordnet.scoring.metrics.combined_embeddings`);
# softmax  - the softmax head itself, over the model's own classes only (no other candidates).
METHODS = ("devise", "conse", "combined", "softmax")
BASELINES = ("softmax", "conse", "combined")  # the methods `devise eval` scores beside DeViSE
