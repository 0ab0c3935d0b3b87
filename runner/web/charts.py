"""Geometry of the dashboard's charts, drawn as inline SVG by the templates: no script, no image files.

Only numbers are computed here; the templates draw them with the label and the value as text
beside each bar, so a chart reads without colour and without the picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from runner.durations import human
from runner.records import RunRecord

WIDTH = 600  # the drawing's width in SVG units; it scales with the page
MIN_BAR = 2.0  # a step that took no time still shows as a sliver


@dataclass(frozen=True)
class Bar:
    """One bar: its offset and width in SVG units, what it is, and its value as text."""

    label: str
    x: float
    width: float
    text: str
    kind: str = ""  # a status, for the colour; the text already says it


@dataclass(frozen=True)
class StepBars:
    """A run's steps as bars on one time axis, from the run's start to its end; one per step, in the
    run's order (None for a step that never started)."""

    bars: tuple[Bar | None, ...]
    total: float  # seconds the axis spans
    total_text: str
    width: int = WIDTH


def step_bars(record: RunRecord, now: datetime | None = None) -> StepBars:
    """The steps of *record* placed on the run's timeline, durations to scale."""
    moment = now or datetime.now(UTC)
    starts = [s.started_at for s in record.steps if s.started_at is not None]
    if not starts:
        return StepBars(tuple(None for _ in record.steps), 0.0, "0s")
    start = min([record.started_at, *starts] if record.started_at else starts)
    ends = [s.finished_at or moment for s in record.steps if s.started_at is not None]
    end = max([record.finished_at, *ends] if record.finished_at else ends)
    total = max((end - start).total_seconds(), 0.001)
    bars: list[Bar | None] = []
    for step in record.steps:
        if step.started_at is None:
            bars.append(None)
            continue
        offset = (step.started_at - start).total_seconds()
        seconds = max(((step.finished_at or moment) - step.started_at).total_seconds(), 0.0)
        x = offset / total * WIDTH
        width = min(max(seconds / total * WIDTH, MIN_BAR), WIDTH - x)
        so_far = " so far" if step.finished_at is None else ""
        bars.append(Bar(f"{step.name} on {step.host}", round(x, 1), round(width, 1),
                        f"{seconds_text(seconds)}{so_far}", step.status.value))
    return StepBars(tuple(bars), total, seconds_text(total))


def seconds_text(value: float) -> str:
    """Short durations with a tenth of a second (steps often take under one), longer ones as runbooks say."""
    return f"{value:.1f}s" if value < 60 else human(value)


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars, one per label, scaled to the largest value."""

    title: str
    bars: tuple[Bar, ...]
    width: int = WIDTH
    label_width: int = 180  # SVG units left of the bars for their labels

    @property
    def height(self) -> int:
        """The drawing's height: one row per bar."""
        return 24 * max(len(self.bars), 1) + 8


def bar_chart(title: str, values: Sequence[tuple[str, float, str]], kind: str = "") -> BarChart:
    """A chart of (label, value, value as text) rows, longest bar for the largest value."""
    span = WIDTH - 180 - 110  # room for the labels on the left and the values on the right
    top = max((v for _, v, _ in values), default=0.0) or 1.0
    bars = tuple(Bar(label, 180.0, round(max(value / top * span, MIN_BAR if value else 0.0), 1), text, kind)
                 for label, value, text in values)
    return BarChart(title, bars)
