"""The geometry of the dashboard's charts: step bars to scale on the run's axis, bars to their maximum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from runner.records import GitRevision, RunRecord, RunStatus, StepRecord, StepStatus, Trigger
from runner.web.charts import MIN_BAR, WIDTH, bar_chart, step_bars

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def step(index: int, start: float | None, end: float | None,
         status: StepStatus = StepStatus.OK) -> StepRecord:
    return StepRecord(index, f"step {index}", "step", "web-1", status,
                      started_at=None if start is None else at(start),
                      finished_at=None if end is None else at(end))


def run(steps: list[StepRecord], end: float | None) -> RunRecord:
    status = RunStatus.SUCCEEDED if end else RunStatus.RUNNING
    return RunRecord("r1", "touch", status, Trigger("manual", "alice"), GitRevision(None), {}, ["web-1"],
                     "allowed", "", started_at=T0,
                     finished_at=None if end is None else at(end), steps=steps)


def test_step_bars_are_to_scale_on_the_run_axis() -> None:
    bars = step_bars(run([step(0, 0, 2), step(1, 2, 8, StepStatus.CHANGED), step(2, None, None)], end=10))
    first, second, never = bars.bars
    assert bars.total == 10 and bars.total_text == "10.0s"
    assert first is not None and (first.x, first.width, first.text) == (0.0, WIDTH * 0.2, "2.0s")
    assert second is not None
    assert (second.x, second.width, second.kind) == (WIDTH * 0.2, WIDTH * 0.6, "changed")
    assert never is None  # a step that never started has no bar, and keeps its place


def test_a_running_step_grows_to_now_and_an_instant_one_stays_visible() -> None:
    bars = step_bars(run([step(0, 0, 0), step(1, 1, None, StepStatus.RUNNING)], end=None), now=at(4))
    instant, running = bars.bars
    assert instant is not None and instant.width == MIN_BAR and instant.text == "0.0s"
    assert running is not None and running.x == WIDTH / 4 and running.width == WIDTH * 3 / 4
    assert running.text == "3.0s so far"


def test_no_step_started_gives_no_bar() -> None:
    assert step_bars(run([step(0, None, None)], end=None)).bars == (None,)


def test_bar_chart_scales_to_the_largest_value_and_keeps_zero_empty() -> None:
    chart = bar_chart("Escalations", [("a", 4.0, "4"), ("b", 1.0, "1"), ("c", 0.0, "0")])
    widths = [bar.width for bar in chart.bars]
    assert widths[0] == 4 * widths[1] and widths[2] == 0 and max(b.x + b.width for b in chart.bars) < WIDTH
    assert chart.height == 24 * 3 + 8
