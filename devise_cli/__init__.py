"""devise_cli: the ``devise`` command line (Click glue only; the work is in ``wordnet`` and ``models``)."""

__version__ = "0.1.0"
