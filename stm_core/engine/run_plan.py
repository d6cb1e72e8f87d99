"""Which frames a propagation call runs over, in which order, and the report of what it did.

A call from frame `start` runs forward, backward or both, each run up to the next annotated frame (or the
video's end); a run from an annotated frame that ends at the next one is followed by a run back from there over
the same frames, so every frame between two annotated frames has a result from each side to blend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Literal

Direction = Literal["forward", "backward", "both"]
Plan = list[tuple[int, list[int]]]
"""(start, frames in order) of each run."""


def run_range(num_frames: int, start: int, direction: str, annotations: Collection[int],
              until_annotated: bool, until: int | None) -> list[int]:
    """The frames one run from `start` propagates, in order: up to the next annotated frame (`until_annotated`,
    else over them), the video's end, or `until` at the latest."""
    step = 1 if direction == "forward" else -1
    end = num_frames if step == 1 else -1
    if until is not None:
        end = min(max(until + 1, start), end) if step == 1 else max(min(until - 1, start), end)
    frames = []
    for i in range(start + step, end, step):
        if i in annotations:
            if until_annotated:
                break
            continue
        frames.append(i)
    return frames


def plan_runs(num_frames: int, start: int, direction: Direction, annotations: Collection[int],
              until_annotated: bool, until: int | None, return_runs: bool) -> Plan:
    """The runs of one propagation with the annotations as they are: from `start` in one or both directions,
    then (`return_runs`) back from each annotated frame they reach."""
    directions = ["forward", "backward"] if direction == "both" else [direction]
    plans = [(start, run_range(num_frames, start, d, annotations, until_annotated, until)) for d in directions]
    if return_runs and start in annotations and until_annotated:
        plans += _return_runs(plans, annotations)
    return plans


def _return_runs(plans: Plan, annotations: Collection[int]) -> Plan:
    """For each run from an annotated frame that ends at the next annotated frame, the run back from that
    frame over the same frames: every frame between two annotated frames then has a result from each side
    by the same network, and keeps their blend by distance."""
    back = []
    for start, frames in plans:
        if frames:
            end = frames[-1] + (1 if frames[-1] > start else -1)
            if end in annotations:
                back.append((end, frames[::-1]))
    return back


@dataclass
class PropagationReport:
    """What one `propagate` call did: which frames got new results and how fast.

    `frames` lists every frame the network propagated, in order: a frame between two annotated frames appears
    once per run over it (the runs from both sides are blended), so `fps` is the network's rate and `updated`
    the frames that got new results."""

    start: int
    direction: Direction
    frames: list[int] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0
    first_frame_seconds: float | None = None  # until the first new result, a preview or not
    adapt_seconds: float = 0.0  # of `seconds`, spent before the first adapted frame (adaptation, any preview)
    previewed: list[int] = field(default_factory=list)  # frames given a preview result while adapting
    reused: list[int] = field(default_factory=list)  # frames an earlier run of the same pass left as this one would
    stopped_at: int | None = None  # a frame annotated during the run, where it stopped

    @property
    def updated(self) -> list[int]:
        return sorted(set(self.frames))

    @property
    def fps(self) -> float:
        """Propagation speed, adaptation excluded (it is paid once per set of annotations)."""
        busy = self.seconds - self.adapt_seconds
        return len(self.frames) / busy if busy > 0 else 0.0


def combined_report(start: int, direction: Direction, parts: list[tuple[float, PropagationReport]],
                    seconds: float) -> PropagationReport:
    """One report for the runs of a `propagate` call that stopped where objects entered: `parts` are each
    run's report with its start, in seconds after the call began."""
    report = PropagationReport(start=start, direction=direction, seconds=seconds)
    for offset, part in parts:
        report.frames += part.frames
        report.previewed += part.previewed
        report.reused += part.reused
        report.cancelled |= part.cancelled
        report.adapt_seconds += part.adapt_seconds
        report.stopped_at = part.stopped_at if part.stopped_at is not None else report.stopped_at
        if report.first_frame_seconds is None and part.first_frame_seconds is not None:
            report.first_frame_seconds = offset + part.first_frame_seconds
    return report
