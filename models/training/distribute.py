"""Where training runs: the ``tf.distribute`` strategy and the mixed-precision policy.

``devise train --strategy auto`` mirrors over every local GPU when there are several.
``multi-worker`` (``MultiWorkerMirroredStrategy``) is refused with one line: on the pinned
Keras 3 every worker crashes in its first ``fit`` (keras-team/keras#20585, measured in
issue 14's spike). On the JAX and PyTorch backends there is no ``tf.distribute``, so only
``auto``/``one`` are accepted and the scope is a no-op.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass


@contextlib.contextmanager
def precision(mixed: bool):
    """``mixed_float16`` as the global dtype policy inside the block (restored after), or nothing."""
    import keras

    if not mixed:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def determinism(enabled: bool):
    """TensorFlow's op determinism inside the block (restored after): a seeded run then repeats exactly.

    Without it two runs with the same ``--seed`` differ from the first epoch on (measured: phase-0
    loss 1.72 vs 1.87 on the same tiny data): random ops inside tf.data's parallel ``map`` (the flip
    and crop augmentation) draw from one stateful generator in whatever order the threads reach it.
    """
    import keras

    if not enabled or keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # only enable_op_determinism is public

    was = getattr(tf_config, "is_op_determinism_enabled", lambda: True)()
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was:
            tf_config.disable_op_determinism()


# the pinned Keras 3 crashes in the first fit under MultiWorkerMirroredStrategy (keras-team/keras#20585)
MULTI_WORKER_REFUSED = (
    "--strategy multi-worker does not work with this Keras: every worker crashes in its first fit "
    "(keras-team/keras#20585); train on several hosts with the JAX backend instead (KERAS_BACKEND=jax; "
    "see the README, \"Training on ImageNet with GPUs\")")

def gpu_count() -> int:
    """GPUs this process sees, on whichever Keras backend runs."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_logical_devices("GPU"))
    if backend == "jax":
        import jax

        return sum(1 for d in jax.local_devices() if d.platform == "gpu")
    if backend == "torch":
        import torch

        return torch.cuda.device_count()
    return 0


def distribution_strategy(name: str):
    """A ``tf.distribute`` strategy: auto = mirrored over all GPUs when there are several."""
    import keras

    from wordnet.base.errors import DeviseError

    if keras.backend.backend() != "tensorflow":
        if name not in ("auto", "one"):
            raise DeviseError(f"--strategy {name} needs the TensorFlow backend (KERAS_BACKEND=tensorflow)")
        return NoStrategy()
    import tensorflow as tf

    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        raise DeviseError(MULTI_WORKER_REFUSED)  # TrainConfig.validate refuses it first
    return tf.distribute.get_strategy()


class NoStrategy:
    """Stand-in for JAX/torch backends, which have no ``tf.distribute``."""

    def scope(self):
        return contextlib.nullcontext()

    @property
    def num_replicas_in_sync(self) -> int:
        """Devices a global batch is split over: those of the Keras distribution (several hosts), else 1."""
        import keras

        distribution = keras.distribution.distribution()
        return len(distribution.device_mesh.devices.reshape(-1)) if distribution is not None else 1


@dataclass(frozen=True)
class Cluster:
    """This process's place among the training processes (one, unless several hosts train on JAX)."""

    process_id: int = 0
    num_processes: int = 1

    @property
    def chief(self) -> bool:
        """Process 0 writes the bundle; the others write to a temporary folder of their own."""
        return self.process_id == 0


_JOINED: Cluster | None = None


def join_cluster(cfg) -> Cluster:
    """Join the other training processes (``jax.distributed``) and train data-parallel over all their devices.

    ``keras.distribution.DataParallel`` over every device of every process: each process
    feeds its share of each global batch (the input is sharded by hand, before decoding:
    ``auto_shard_dataset=False``); Keras assembles the global batch in process order, and
    the training step is one global program, so losses, metrics and BatchNorm statistics
    are those of the global batch. Only once per process (JAX allows one initialisation).
    """
    global _JOINED
    if cfg.num_processes <= 1:
        return Cluster()
    import keras

    from wordnet.base.errors import DeviseError

    if keras.backend.backend() != "jax":
        raise DeviseError(f"--num-processes {cfg.num_processes} needs the JAX backend (KERAS_BACKEND=jax), not "
                          f"{keras.backend.backend()}")
    if _JOINED is not None:
        if (_JOINED.process_id, _JOINED.num_processes) != (cfg.process_id, cfg.num_processes):
            raise DeviseError("this process already joined other training processes with another --process-id")
        return _JOINED
    import jax

    try:
        jax.distributed.initialize(coordinator_address=cfg.coordinator, num_processes=cfg.num_processes,
                                   process_id=cfg.process_id)
    except Exception as exc:  # noqa: BLE001 - a wrong address or a missing peer: one line
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:300]
        raise DeviseError(f"process {cfg.process_id} could not join {cfg.num_processes} training processes at "
                          f"--coordinator {cfg.coordinator}: {first}") from None
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices(),
                                                                        auto_shard_dataset=False))
    import atexit

    atexit.register(_exit_if_abandoned)  # runs before JAX's own shutdown (registered earlier: LIFO)
    _JOINED = Cluster(cfg.process_id, cfg.num_processes)
    return _JOINED


_ABANDONED = False


def abandon_cluster() -> None:
    """After a failure: at exit, leave at once instead of waiting in JAX's shutdown barrier for peers
    that may be dead (it would wait for the heartbeat timeout, 100 s, then abort the process)."""
    global _ABANDONED
    _ABANDONED = True


def _exit_if_abandoned() -> None:
    if _ABANDONED:
        import os
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
