"""Progress on the terminal: one rich bar recipe for every command, and the training reporter.

Bars go to stderr and only on a terminal (logs and pipes get the results alone). The
library never draws anything itself: it calls ``progress(done, total)`` callbacks or a
:class:`models.training.reporter.Reporter`, and these are the CLI's implementations.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

import click

from devise.training import Reporter, format_epoch

from .common import console


def _columns(description: str, *extra):
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return (TextColumn(description), BarColumn(), MofNCompleteColumn(), *extra, TimeElapsedColumn(),
            TimeRemainingColumn())


@contextlib.contextmanager
def progress_bar(description: str, total: int | None = None, *, enabled: bool = True
                 ) -> Iterator[Callable[..., None]]:
    """A transient bar on stderr while the block runs; yields ``update(done, total=None, description=None)``."""
    from rich.progress import Progress

    bar = Progress(*_columns("{task.description}"), console=console(stderr=True), transient=True,
                   disable=not (enabled and sys.stderr.isatty()))
    task = bar.add_task(description, total=total)

    def update(done: int, total_: int | None = None, description_: str | None = None) -> None:
        fields = {"completed": done}
        if total_ is not None:
            fields["total"] = total_
        if description_ is not None:
            fields["description"] = description_
        bar.update(task, **fields)

    with bar:
        yield update


@contextlib.contextmanager
def stage_progress(enabled: bool = True) -> Iterator[Callable[[str, int, "int | None"], None]]:
    """Bars for a sequence of stages (``vectors train``); yields ``progress(stage, done, total)``.

    Each distinct stage gets its own bar; ``epoch k/n`` stages share the training bar,
    which counts tokens over all epochs. When stderr is not a terminal (logs), each
    stage is announced once as a plain line instead.
    """
    from rich.progress import Progress

    live = enabled and sys.stderr.isatty()
    bar = Progress(*_columns("{task.description:<12}"), console=console(stderr=True), disable=not live)
    tasks: dict[str, int] = {}
    said: set[str] = set()

    def update(desc: str, done: int, total) -> None:
        if not live:  # logs: one line per stage instead of a bar
            if enabled and desc not in said:
                said.add(desc)
                click.echo(f"{desc}...", err=True)
            return
        key = "training" if desc.startswith("epoch ") else desc
        if key not in tasks:
            tasks[key] = bar.add_task(desc, total=total)
        bar.update(tasks[key], completed=done, total=total, description=desc)

    with bar:
        yield update


class RichReporter(Reporter):
    """Training progress on a rich console (stderr): a bar per epoch and one line when it ends."""

    def __init__(self, con=None):
        self.console = con or console(stderr=True)
        self._bar = None
        self._task = None

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def failure(self, path: str, reason: str) -> None:
        self.console.print(f"skipped {path}: {reason}", style="yellow", highlight=False, markup=False, soft_wrap=True)

    def epoch_begin(self, phase: str, epoch: int, epochs: int, steps: int | None) -> None:
        from rich.progress import Progress, TextColumn

        self._stop()
        self._bar = Progress(*_columns(f"[bold]{phase}[/] epoch {epoch}/{epochs}", TextColumn("{task.fields[loss]}")),
                             console=self.console, transient=True)
        self._bar.start()
        self._task = self._bar.add_task("steps", total=steps, loss="")

    def batch_end(self, step: int, logs: dict) -> None:
        if self._bar is not None:
            loss = logs.get("loss")
            self._bar.update(self._task, completed=step, loss=f"loss {loss:.4f}" if loss is not None else "")

    def epoch_end(self, phase: str, epoch: int, epochs: int, logs: dict, seconds: float) -> None:
        self._stop()
        self.console.print(format_epoch(phase, epoch, epochs, logs, seconds), highlight=False, soft_wrap=True)

    def task(self, description: str, total: int):
        from rich.progress import Progress

        bar = Progress(*_columns(description), console=self.console, transient=True)
        task_id = bar.add_task(description, total=total)
        bar.start()

        def update(done: int, total_: int) -> None:
            bar.update(task_id, completed=done, total=total_)
            if done >= total_:
                bar.stop()

        return update

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
