"""How training talks to the user: a quiet :class:`Reporter` (library default, tests) and a rich one.

The training engine only calls these methods, so the Click command decides how
progress looks (rich bars and one line per epoch) and library users can stay silent.
"""
from __future__ import annotations


class Reporter:
    """Silent reporter; subclass and override to show progress."""

    def message(self, text: str) -> None:
        """A one-line status message (phase start, cache hit, resume...)."""

    def failure(self, path: str, reason: str) -> None:
        """An image that would not decode (called once per file)."""

    def epoch_callback(self, phase: str, epochs: int, steps: int | None):
        """A Keras callback showing one phase's epochs, or None."""
        return None

    def task(self, description: str, total: int):
        """Return a callable ``update(done, total)`` for a non-Keras loop (feature caching), or None."""
        return None


class RichReporter(Reporter):
    """Progress bars and per-epoch lines on a rich console (stderr in the CLI)."""

    def __init__(self, console=None):
        if console is None:
            from rich.console import Console

            console = Console(stderr=True)
        self.console = console

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def failure(self, path: str, reason: str) -> None:
        self.console.print(f"skipped {path}: {reason}", style="yellow", highlight=False, markup=False, soft_wrap=True)

    def epoch_callback(self, phase: str, epochs: int, steps: int | None):
        from .callbacks import RichEpochs

        return RichEpochs(self.console, phase, epochs, steps)

    def task(self, description: str, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=self.console, transient=True)
        task_id = progress.add_task(description, total=total)
        progress.start()

        def update(done: int, total_: int) -> None:
            progress.update(task_id, completed=done, total=total_)
            if done >= total_:
                progress.stop()

        return update
