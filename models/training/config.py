"""Training hyperparameters: one dataclass, the single source of every setting's name, default and choices.

Defaults follow the paper and the Keras DeViSE write-up. Each field's metadata holds its
allowed values (choices or range) and how the command line presents it (help text, short
flag); ``devise train`` builds its options from these fields, :meth:`TrainConfig.validate`
checks the same declarations for library callers and stored bundles, ``--config FILE``
reads the same keys, and the bundle's ``config.json`` records :meth:`TrainConfig.to_dict`
for ``--resume``.
Nothing here imports Keras, so ``devise --help`` stays instant.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from models.data.augment import recipe_names
from models.data.style import STYLE_OPS, parse_recipe
from models.net.catalog import LOSS_VARIANTS, backbone_names
from models.training.distribute import MULTI_WORKER_REFUSED
from wordnet.base.errors import DeviseError

GPU_STEPS_PER_EXECUTION = 16  # --steps-per-execution 0 with a GPU: 16 steps per host call


def setting(default, help: str = "", *, choices=None, min=None, max=None, min_open: bool = False,
            max_open: bool = False, short: str | None = None, off_flag: str | None = None,
            metavar: str | None = None, envvar: str | None = None, cli: bool = True, **kwargs):
    """A :class:`TrainConfig` field with its allowed values and how the CLI shows it.

    ``choices`` and the range ``min``..``max`` (``min_open``/``max_open``: that bound excluded) are
    declared here once: Click's option types and :meth:`TrainConfig.validate` both read them.
    ``off_flag``: the name of a boolean's negative flag, e.g. ``no-augment``; ``cli=False``: library-only.
    """
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None, "min": min, "max": max,
            "min_open": min_open, "max_open": max_open, "short": short, "off_flag": off_flag, "metavar": metavar,
            "envvar": envvar, "cli": cli}
    if callable(default):
        return field(default_factory=default, metadata=meta, **kwargs)
    return field(default=default, metadata=meta, **kwargs)


def option_name(name: str) -> str:
    """The command-line spelling of a :class:`TrainConfig` field: ``--image-size`` for ``image_size``."""
    return "--" + name.replace("_", "-")


def _bound_problem(value, meta: dict) -> str | None:
    """Why ``value`` is outside the field's declared choices or range, or None when it is inside."""
    choices, low, high = meta.get("choices"), meta.get("min"), meta.get("max")
    if choices is not None:
        return None if value in choices else f"must be one of {', '.join(choices)}, got {value!r}"
    if (low is None and high is None) or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number, got {value!r}"
    too_low = low is not None and (value <= low if meta.get("min_open") else value < low)
    too_high = high is not None and (value >= high if meta.get("max_open") else value > high)
    if not (too_low or too_high):
        return None
    if low is not None and high is not None:
        interval = f"{'(' if meta.get('min_open') else '['}{low}, {high}{')' if meta.get('max_open') else ']'}"
        return f"must be in {interval}, got {value}"
    if low is not None:
        return f"must be {'above' if meta.get('min_open') else 'at least'} {low}, got {value}"
    return f"must be {'below' if meta.get('max_open') else 'at most'} {high}, got {value}"


@dataclass
class TrainConfig:
    # model
    backbone: str = setting("resnet50", "Image backbone (keras.applications, or EfficientNet-Lite with offline "
                                        "ImageNet weights).", choices=backbone_names())
    weights: str = setting("imagenet", "Backbone initialisation: Keras ImageNet weights, random, a backbone shipped "
                           "with devise by name (devise-pool-64: MobileNetV2 a=0.5 pre-trained on the icon pool), "
                           "a `devise pretrain` folder, a weights file, or a bundle folder (its trained backbone).",
                           metavar="imagenet|none|NAME|PATH")
    image_size: int = setting(224, "Square input side in pixels.", min=32)
    alpha: float | None = setting(None, "Width multiplier (MobileNet backbones).")
    hidden_units: int = setting(1024, "Width of the DeViSE head's hidden layer (0: a linear head).", min=0)
    dropout: float = setting(0.3, "Dropout on the backbone's features.", min=0, max=1, max_open=True)
    # loss
    margin: float = setting(0.1, "Hinge rank loss margin.", min=0, min_open=True)
    loss: str = setting("sum", "Sum over all negatives, or the paper's first-violation sampling.",
                        choices=LOSS_VARIANTS)
    # data
    batch_size: int = setting(32, "Global batch size (split across devices).", min=1, short="-b")
    val_split: float = setting(0.1, "Fraction of each class held out for validation (stratified, seeded).",
                               min=0, max=1, max_open=True)
    augment: bool = setting(True, "Augment training images in phases 0 and 2 (else: the evaluation view).",
                            off_flag="no-augment")
    augmentation: str = setting("auto", "Augmentation recipe and its evaluation crop: inception (photos: random "
                                "resized crop, flip; centre 87.5 % at evaluation), square (small pre-cropped "
                                "images: centre square, flip, padded random crop), auto (inception when most "
                                "training images are larger than --image-size and not square).",
                                choices=recipe_names())
    style: str = setting("", "Style augmentations in phases 0 and 2 (with --augment), a comma list of "
                         f"{', '.join(STYLE_OPS)}, or all/none (models.data.style).", metavar="OP,...")
    seed: int = setting(0, "Seed of the split, shuffling, augmentation and initialisation.", envvar="DEVISE_SEED")
    # phase 0: softmax pre-training of the backbone (paper's step 1)
    pretrain_epochs: int = setting(0, "Phase 0: softmax pre-training of the backbone.", min=0)
    pretrain_lr: float = setting(1e-3, "Phase 0 Adam learning rate.")
    pretrain_schedule: str = setting("constant", "Phase 0 learning rate: constant, or cosine decay to 0 over "
                                     "its epochs.", choices=("constant", "cosine"))
    # BatchNorm statistics recomputed on this many clean training images before phase 1
    bn_images: int = setting(1000, "Training images used to recompute BatchNorm statistics before phase 1.", min=0)
    # phase 1: head on cached frozen features, SGD with momentum
    head_epochs: int = setting(10, "Phase 1: head on cached frozen features.", min=0)
    head_lr: float = setting(0.01, "Phase 1 SGD learning rate.")
    momentum: float = setting(0.9, "Phase 1 SGD momentum.")
    # phase 2: fine-tune everything, Adagrad, lower learning rate
    finetune_epochs: int = setting(10, "Phase 2: fine-tune everything.", min=0)
    finetune_lr: float = setting(1e-3, "Phase 2 Adagrad learning rate.")
    train_batchnorm: bool = setting(False, "Phase 2: update BatchNorm layers (then recompute their statistics) "
                                    "or keep them frozen.", off_flag="freeze-batchnorm")
    # engineering
    strategy: str = setting("auto", "tf.distribute strategy (auto: mirrored over all GPUs if several; "
                            "multi-worker is refused: several hosts train on the JAX backend).",
                            choices=("auto", "mirrored", "multi-worker", "one"))
    mixed_precision: bool = setting(False, "mixed_float16 compute (GPUs); loss and output in float32.")
    tensorboard: str | None = setting(None, "Write TensorBoard logs.", metavar="DIR")
    run_eagerly: bool = setting(False, "Run Keras eagerly: no graph tracing (debugging, or a handful of images "
                                "on a slow CPU).")
    deterministic: str = setting("auto", "Deterministic TensorFlow ops, so a run with the same --seed, data and "
                                 "machine repeats exactly: on, off, or auto (on without a GPU; off with one, where "
                                 "the input pipeline must run in parallel and some GPU kernels have no "
                                 "deterministic version).", choices=("auto", "on", "off"))
    steps_per_execution: int = setting(0, f"Training steps per host call (0: {GPU_STEPS_PER_EXECUTION} with a GPU, "
                                       "1 without).", min=0)
    jit_compile: str = setting("auto", "XLA-compile the training step (auto: Keras's choice, XLA on a single GPU "
                               "without a distribution strategy).", choices=("auto", "on", "off"))
    decode_workers: int = setting(0, "Image decoding processes of the TF-free input path (Keras backends other "
                                  "than TensorFlow); 0: one per CPU core but one, at most 16.", min=0,
                                  envvar="DEVISE_DECODE_WORKERS")
    # several hosts (JAX backend): every process runs the same command with its own --process-id
    coordinator: str | None = setting(None, "Several hosts (KERAS_BACKEND=jax): HOST:PORT of the coordinator that "
                                      "process 0 starts (jax.distributed); the same on every process.",
                                      metavar="HOST:PORT", envvar="DEVISE_COORDINATOR")
    num_processes: int = setting(1, "Several hosts: the number of training processes (one per host).", min=1,
                                 envvar="DEVISE_NUM_PROCESSES")
    process_id: int = setting(0, "Several hosts: this process's index, 0 to --num-processes - 1 (process 0 "
                              "writes the bundle).", min=0, envvar="DEVISE_PROCESS_ID")
    top_k: list = setting(lambda: [1, 5], "Validation hit@k values.", cli=False)

    def validate(self) -> "TrainConfig":
        if isinstance(self.deterministic, bool):  # bundles written before auto was the default
            self.deterministic = "on" if self.deterministic else "off"
        for f in dataclasses.fields(self):
            problem = _bound_problem(getattr(self, f.name), f.metadata)
            if problem:
                raise DeviseError(f"{option_name(f.name)} {problem}")
        checks = [  # what involves several settings, or more than one field's range
            (self.pretrain_epochs + self.head_epochs + self.finetune_epochs > 0,
             "all epoch counts are 0: nothing to train"),
            (self.strategy != "multi-worker", MULTI_WORKER_REFUSED),
            (self.process_id < self.num_processes, f"--process-id must be 0 to {self.num_processes - 1} "
                                                   f"(--num-processes {self.num_processes}), got {self.process_id}"),
            (self.num_processes == 1 or bool(self.coordinator),
             "--num-processes above 1 needs --coordinator HOST:PORT (process 0's address, the same on every process)"),
            (self.batch_size % self.num_processes == 0,
             f"--batch-size {self.batch_size} must be a multiple of --num-processes {self.num_processes}"),
        ]
        for ok, message in checks:
            if not ok:
                raise DeviseError(message)
        try:
            parse_recipe(self.style)
        except ValueError as exc:
            raise DeviseError(f"--style: {exc}") from None
        return self

    def with_runtime_of(self, live: "TrainConfig") -> "TrainConfig":
        """These settings with ``live``'s :data:`RUNTIME_FIELDS` (``--resume`` keeps where and how this
        process runs from its command line, the model and data settings from the bundle)."""
        return dataclasses.replace(self, **{name: getattr(live, name) for name in RUNTIME_FIELDS})

    def steps_per_call(self) -> int:
        """``steps_per_execution`` for Keras: as set, or (0) more than one with a GPU, one on CPU."""
        if self.steps_per_execution or self.run_eagerly:
            return max(1, self.steps_per_execution)
        from models.training.distribute import gpu_count

        return GPU_STEPS_PER_EXECUTION if gpu_count() else 1

    def determinism(self) -> bool:
        """Whether op determinism is on for this run: as set, or (auto) on unless a GPU is present."""
        if self.deterministic != "auto":
            return self.deterministic == "on"
        from models.training.distribute import gpu_count

        return not gpu_count()

    def jit(self):
        """``jit_compile`` for Keras's ``compile``."""
        return {"auto": "auto", "on": True, "off": False}[self.jit_compile]

    def backbone_options(self) -> dict:
        return {"alpha": self.alpha} if self.alpha is not None else {}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise DeviseError(f"unknown training setting(s): {', '.join(unknown)}")
        return cls(**data)


# where this process runs and how it reads its input, not what it trains: from the command line even on --resume
RUNTIME_FIELDS = ("coordinator", "num_processes", "process_id", "decode_workers")


def cli_fields() -> list[dataclasses.Field]:
    """The :class:`TrainConfig` fields that are command-line options, in order."""
    return [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("cli", True)]


def read_config_file(path) -> dict:
    """Settings from a TOML (``.toml``) or INI file; keys are option names (dashes or underscores).

    INI values are strings (Click converts them); an INI file may use a ``[train]``
    section or the default section. TOML may use a ``[train]`` table or top-level keys.
    """
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise DeviseError(f"config file {path} does not exist")
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            data = data.get("train", data)
        else:
            import configparser

            parser = configparser.ConfigParser()
            parser.read_string(path.read_text(encoding="utf-8"))
            section = parser["train"] if parser.has_section("train") else parser.defaults()
            data = dict(section)
    except Exception as exc:  # noqa: BLE001 - TOML, INI and decode errors have no common base: one line naming the file
        message = f"{path}: cannot parse config file ({exc.__class__.__name__}: {exc})"
        raise DeviseError(message.splitlines()[0]) from None
    return {str(k).replace("-", "_"): v for k, v in data.items()}


# `devise pretrain` (phase 0 alone, on a pool): the TrainConfig fields it takes and its own defaults,
# sized for a CPU: MobileNetV2 a=0.5 at 64 px from random weights, cosine-decayed Adam, style augmentation
PRETRAIN_FIELDS = ("backbone", "alpha", "weights", "image_size", "dropout", "batch_size", "val_split", "augment",
                   "style", "seed", "pretrain_epochs", "pretrain_lr", "pretrain_schedule", "bn_images", "strategy",
                   "mixed_precision", "tensorboard", "run_eagerly", "deterministic")
PRETRAIN_DEFAULTS = {"backbone": "mobilenet_v2", "alpha": 0.5, "weights": "none", "image_size": 64,
                     "batch_size": 64, "val_split": 0.05, "style": "all", "pretrain_epochs": 30,
                     "pretrain_lr": 2e-3, "pretrain_schedule": "cosine", "bn_images": 2000}


def pretrain_config(**settings) -> TrainConfig:
    """The :class:`TrainConfig` of a pre-training run: :data:`PRETRAIN_DEFAULTS`, then ``settings``
    (only :data:`PRETRAIN_FIELDS`); the DeViSE phases are off."""
    unknown = sorted(set(settings) - set(PRETRAIN_FIELDS))
    if unknown:
        raise DeviseError(f"not a pre-training setting: {', '.join(unknown)}")
    return TrainConfig(**{**PRETRAIN_DEFAULTS, **settings, "head_epochs": 0, "finetune_epochs": 0}).validate()
