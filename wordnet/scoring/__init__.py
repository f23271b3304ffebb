"""Scoring a model's outputs against label vocabularies (no Keras, no WordNet reader here).

- :mod:`~wordnet.scoring.metrics`: hit@k, hierarchical precision@k, ConSE, bootstrap intervals,
  calibrated stacking;
- :mod:`~wordnet.scoring.evaluation`: the settings ``devise eval`` reports (given, zero-shot,
  generalised zero-shot, splits), as one JSON-ready report;
- :mod:`~wordnet.scoring.results`: flat result records of a report, and merged tables of many runs.
"""

BASELINES = ("softmax", "conse")  # the baselines `devise eval` scores beside DeViSE (numpy-free, for the CLI)
