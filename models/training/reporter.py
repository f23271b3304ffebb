"""How training talks to its caller: the :class:`Reporter` interface (silent by default).

The training engine only calls these methods, so the caller decides how progress looks:
the CLI draws rich bars and one line per epoch (``devise_cli.progress.RichReporter``), a
library user stays silent or logs. Nothing here imports Keras or rich; the Keras side is
:class:`models.training.callbacks.ReporterCallback`, which forwards ``fit``'s events here.
"""
from __future__ import annotations

from typing import Callable


class Reporter:
    """Silent reporter; subclass and override what you want to show."""

    def message(self, text: str) -> None:
        """A one-line status message (phase start, cache hit, resume...)."""

    def failure(self, path: str, reason: str) -> None:
        """An image that would not decode (called once per file)."""

    def epoch_begin(self, phase: str, epoch: int, epochs: int, steps: int | None) -> None:
        """Epoch ``epoch`` (1-based) of ``epochs`` of ``phase`` starts; ``steps`` batches (None: unknown)."""

    def batch_end(self, step: int, logs: dict) -> None:
        """Batch ``step`` (1-based) of the current epoch is done; ``logs`` use history.csv's names."""

    def epoch_end(self, phase: str, epoch: int, epochs: int, logs: dict, seconds: float) -> None:
        """Epoch ``epoch`` of ``phase`` is done; ``logs`` use history.csv's names (``loss``, ``val_hit_at_1``...)."""

    def task(self, description: str, total: int) -> Callable[[int, int], None] | None:
        """A callable ``update(done, total)`` for a non-Keras loop (feature caching), or None."""
        return None


def format_epoch(phase: str, epoch: int, epochs: int, logs: dict, seconds: float) -> str:
    """One epoch's summary line: ``head epoch 3/10  loss 0.0412  val hit@1 31.2%  (2.1 s)``."""
    parts = [f"{phase} epoch {epoch}/{epochs}"]
    for key, label, pct in (("loss", "loss", False), ("accuracy", "acc", True), ("val_loss", "val loss", False),
                            ("val_accuracy", "val acc", True), ("val_hit_at_1", "val hit@1", True),
                            ("val_hit_at_5", "val hit@5", True)):
        if key in logs:
            parts.append(f"{label} {logs[key] * 100:.1f}%" if pct else f"{label} {logs[key]:.4f}")
    parts.append(f"({seconds:.1f} s)")
    return "  ".join(parts)
