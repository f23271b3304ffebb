"""devise_cli: the ``devise`` command line — Click glue over the :mod:`devise` API (parse, call, render).

Importing :mod:`devise` first binds ``models`` and ``wordnet`` to devise's own packages,
so the commands never depend on what the working directory holds. The CLI imports only
the :mod:`devise` API, Click, rich and the standard library (``tests/test_layering.py``).

- :mod:`devise_cli.cli`: the ``devise`` group, sub-commands loaded lazily;
- :mod:`devise_cli.common`: ``Error:`` lines, the console, shared options; :mod:`devise_cli.progress`:
  progress bars and the training reporter;
- :mod:`devise_cli.wordnet_cmds`, :mod:`devise_cli.vectors_cmds`, :mod:`devise_cli.vocab_cmds`:
  ``devise wordnet``, ``vectors``, ``vocab``;
- :mod:`devise_cli.train_cmd`, :mod:`devise_cli.pretrain_cmd`: ``devise train``, ``pretrain``;
- :mod:`devise_cli.predict_cmd`, :mod:`devise_cli.eval_cmd` (rendered by :mod:`devise_cli.eval_report`),
  :mod:`devise_cli.results_cmd`: ``devise predict``, ``eval``, ``results``;
- :mod:`devise_cli.search_cmds` (pages by :mod:`devise_cli.search_html`): ``devise index``, ``search``;
- :mod:`devise_cli.data_cmds`: ``devise data``; :mod:`devise_cli.export_cmd`: ``devise export``;
- :mod:`devise_cli.model_cmds`: ``devise model`` (the default model).
"""
import devise  # noqa: F401
