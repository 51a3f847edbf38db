"""A progress bar over a load's recorded seconds, with answers and rate so far (stderr)."""

from __future__ import annotations

import sys
from typing import Any

import click

from shardstack.bench.recording import Recording


class Progress:
    """Called by the load with the time elapsed and what was recorded so far."""

    def __init__(self, label: str, duration_s: float) -> None:
        self._label = label
        self._steps = max(1, round(duration_s * 10))
        self._duration_s = duration_s
        self._bar: Any = None
        self._line = ""

    def __call__(self, elapsed_s: float, recording: Recording, done: bool) -> None:
        if self._bar is None:
            self._bar = click.progressbar(
                length=self._steps,
                label=self._label,
                file=sys.stderr,
                show_eta=False,
                item_show_func=lambda _: self._line,
            ).__enter__()
        errors = recording.sent - recording.ok
        rate = recording.answers / elapsed_s if elapsed_s else 0.0
        self._line = f"{recording.answers} answers, {rate:.0f}/s, {errors} not ok"
        target = (
            self._steps
            if done
            else min(self._steps, int(elapsed_s / self._duration_s * self._steps))
        )
        self._bar.update(max(0, target - self._bar.pos))
        if done:
            self._bar.__exit__(None, None, None)
