"""devise_cli: the ``devise`` command line — Click glue over the :mod:`devise` API (parse, call, render).

Importing :mod:`devise` first binds ``models`` and ``wordnet`` to devise's own packages,
so the commands never depend on what the working directory holds.
"""
import devise  # noqa: F401
