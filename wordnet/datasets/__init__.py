"""Labelled benchmark datasets built offline from art packages installed on the machine.

- :mod:`~wordnet.datasets.emoji_concepts`: the hand-checked concept table (emoji -> WordNet synset)
  and the seen/unseen concept splits;
- :mod:`~wordnet.datasets.emoji_sources`: the emoji art sets (fonts, OpenMoji, Iconify) and rendering;
- :mod:`~wordnet.datasets.emoji`: ``devise data emoji`` (images, manifest, splits, CSV views);
- :mod:`~wordnet.datasets.icons`: ``devise data icons`` (every open set of ``@iconify/json``);
- :mod:`~wordnet.datasets.clipart`: ``devise data clipart`` (Open Clip Art drawings of the same concepts);
- :mod:`~wordnet.datasets.icon_pool`: ``devise data pool``, the pre-training pool of icon classes
  that are no benchmark concept;
- :mod:`~wordnet.datasets.photos`: ``devise data photos`` (labelled real photographs from GCompris' Qt
  resource files and scikit-image, with their licences).
"""
