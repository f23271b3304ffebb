"""Training hyperparameters: one dataclass, defaults from the paper and the Keras DeViSE write-up.

The CLI exposes every field as an option of the same name (``--head-lr`` is
``head_lr``) and reads the same keys from ``--config FILE``; ``config.json`` in the
bundle records them all, and ``--resume`` reads them back.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from wordnet.errors import DeviseError


@dataclass
class TrainConfig:
    # model
    backbone: str = "resnet50"
    weights: str = "imagenet"          # imagenet | none | PATH
    image_size: int = 224
    alpha: float | None = None          # width multiplier (MobileNet backbones only)
    hidden_units: int = 1024
    dropout: float = 0.3
    # loss
    margin: float = 0.1
    loss: str = "sum"                   # sum | sampled
    # data
    batch_size: int = 32
    val_split: float = 0.1
    augment: bool = True
    seed: int = 0
    # phase 0: softmax pre-training of the backbone (paper's step 1)
    pretrain_epochs: int = 0
    pretrain_lr: float = 1e-3           # Adam
    # BatchNorm statistics recomputed on this many clean training images before phase 1
    bn_images: int = 1000
    # phase 1: head on cached frozen features, SGD with momentum
    head_epochs: int = 10
    head_lr: float = 0.01
    momentum: float = 0.9
    # phase 2: fine-tune everything, Adagrad, lower learning rate
    finetune_epochs: int = 10
    finetune_lr: float = 1e-3
    train_batchnorm: bool = False       # phase 2: BatchNorm layers stay in inference mode unless set
    # engineering
    strategy: str = "auto"              # auto | mirrored | multi-worker | one
    mixed_precision: bool = False
    tensorboard: str | None = None
    run_eagerly: bool = False           # debugging / tiny data: no graph tracing (slow per step)
    top_k: list = field(default_factory=lambda: [1, 5])

    def validate(self) -> "TrainConfig":
        checks = [
            (self.image_size >= 32, f"--image-size must be at least 32, got {self.image_size}"),
            (self.batch_size >= 1, f"--batch-size must be positive, got {self.batch_size}"),
            (0 <= self.dropout < 1, f"--dropout must be in [0, 1), got {self.dropout}"),
            (self.margin > 0, f"--margin must be positive, got {self.margin}"),
            (self.loss in ("sum", "sampled"), f"--loss must be sum or sampled, got {self.loss!r}"),
            (min(self.pretrain_epochs, self.head_epochs, self.finetune_epochs) >= 0, "epoch counts must be >= 0"),
            (self.pretrain_epochs + self.head_epochs + self.finetune_epochs > 0,
             "all epoch counts are 0: nothing to train"),
            (self.strategy in ("auto", "mirrored", "multi-worker", "one"),
             f"--strategy must be auto, mirrored, multi-worker or one, got {self.strategy!r}"),
            (self.hidden_units >= 1, "--hidden-units must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise DeviseError(message)
        return self

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
    except Exception as exc:
        message = f"{path}: cannot parse config file ({exc.__class__.__name__}: {exc})"
        raise DeviseError(message.splitlines()[0]) from None
    return {str(k).replace("-", "_"): v for k, v in data.items()}
