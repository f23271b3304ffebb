"""Training a DeViSE model: the phases, their callbacks and everything a long run needs.

- :mod:`~models.training.config`: :class:`TrainConfig`, every hyperparameter (the CLI's options);
- :mod:`~models.training.train`: :func:`train_devise`, the resumable sequence of phases into a bundle;
- :mod:`~models.training.phases`: phase 0 (softmax), BatchNorm recomputation, phase 1 (head on
  cached features), phase 2 (fine-tuning), finishing the bundle;
- :mod:`~models.training.feature_cache`: the phase-1 feature cache's key and its resumable pass;
- :mod:`~models.training.batchnorm`: recomputing BatchNorm statistics;
- :mod:`~models.training.callbacks`: history rows, best weights, SIGKILL-safe backups, progress;
- :mod:`~models.training.distribute`: distribution strategy and mixed precision;
- :mod:`~models.training.reporter`: the :class:`Reporter` interface training reports progress through (silent;
  the caller's subclass draws it);
- :mod:`~models.training.backbone_pretraining`: ``devise pretrain``'s engine (phase 0 alone on a pool, written as
  a backbone folder; the phase itself is :func:`models.training.phases.pretrain`);
- :mod:`~models.training.head_fit`: a DeViSE head fitted on feature vectors in memory (the default model's);
- :mod:`~models.training.resume_point`: where a run on several processes starts, decided by process 0.
"""
