"""Domain errors shared by every devise package.

Library code raises these with a message that names the offending file, label or
value *and* what to do about it; the CLI turns them into one-line ``Error: ...``
messages (exit code 1). Nothing here imports a heavy library, so ``models`` may
import it without pulling NLTK in.
"""


class DeviseError(Exception):
    """Base class: a user-facing problem, never a bug."""


class WordNetMissingError(DeviseError):
    """No WordNet corpus could be found or built."""


class UnknownLabelError(DeviseError):
    """A label that maps to no WordNet noun synset."""


class VectorsError(DeviseError):
    """A word-vector file that cannot be read, or labels without vectors."""


class VocabularyError(DeviseError):
    """A vocabulary file that is missing, corrupt or of the wrong shape."""


class DimensionMismatchError(VocabularyError):
    """Two things that must share an embedding dimension do not."""


class ImageError(DeviseError):
    """An image file that cannot be decoded."""


class DatasetError(DeviseError):
    """A dataset folder or CSV that cannot be used for training or evaluation."""


class BundleError(DeviseError):
    """A model bundle that is missing, incomplete or corrupt."""


class UsageError(DeviseError):
    """Arguments that do not go together, or a required one missing (the CLI's exit code 2)."""
