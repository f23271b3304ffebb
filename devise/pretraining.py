"""Pre-training a backbone on a pool of many classes disjoint from the zero-shot ones (the paper's step 1).

:func:`pretrain` is what ``devise pretrain`` runs: it reads a pool (``devise data pool``'s
folder, any class-per-folder tree, or a CSV ``img_name,class``) whose classes are plain names,
not WordNet nouns, and hands ``(path, class index)`` items to
:func:`models.training.backbone_pretraining.pretrain_backbone`. The folder it writes is a backbone that
``devise train --weights FOLDER`` (or :func:`devise.train` ``weights=FOLDER``) starts from.
"""
from __future__ import annotations

from pathlib import Path

from devise._lazy import lazy_exports

# names handed on from the two halves, imported on first use (devise._lazy)
_EXPORTS = {
    "PRETRAIN_FIELDS": "models.training.config",  # the TrainConfig fields pretraining takes
    "PRETRAIN_DEFAULTS": "models.training.config",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)


def pool_items(pool: str | Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """``(items, classes)`` of a pool: its ``train.csv`` when it has one, else the folder or CSV itself."""
    from models.data.datasets import scan_dataset

    pool = Path(pool).expanduser()
    source = pool / "train.csv" if (pool / "train.csv").is_file() else pool
    labelled = scan_dataset(source)
    classes = sorted({name for _, name in labelled})
    index = {name: i for i, name in enumerate(classes)}
    return [(path, index[name]) for path, name in labelled], classes


def pretrain(pool: str | Path, output: str | Path, *, resume: bool = False, overwrite: bool = False,
             reporter=None, callbacks: list | None = None, **settings):
    """Pre-train a backbone on ``pool``'s classes (softmax, phase 0) and write it to the folder ``output``.

    ``settings`` are :data:`models.training.config.PRETRAIN_FIELDS` (``pretrain_epochs=30``,
    ``style="crop,recolour"``...) over :data:`~models.training.config.PRETRAIN_DEFAULTS`. The
    pool's ``pool.json`` (classes, sets, licences, what was excluded) is recorded as provenance
    in ``output/backbone.json`` with the weights' SHA-256. Returns the
    :class:`models.training.backbone_pretraining.PretrainResult`.
    """
    from models.training.config import pretrain_config
    from wordnet.base.files import ensure_unlocked, lock_path_for
    from wordnet.datasets.icon_pool import read_pool

    output = Path(output).expanduser()
    ensure_unlocked(lock_path_for(output), f"output folder {output}")
    cfg = pretrain_config(**settings)
    items, classes = pool_items(pool)
    provenance = {"path": str(Path(pool).expanduser().resolve()), **read_pool(pool)}

    from models.training.backbone_pretraining import pretrain_backbone

    return pretrain_backbone(items, classes, output, cfg, resume=resume, overwrite=overwrite,
                             provenance=provenance, reporter=reporter, callbacks=callbacks)
