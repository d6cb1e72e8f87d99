"""Which frames a propagation call runs over, without a network."""

from __future__ import annotations

from stm_core.engine.run_plan import plan_runs, run_range


def test_a_run_between_two_annotations_is_followed_by_the_run_back_over_the_same_frames():
    plans = plan_runs(10, 2, "both", {2, 6}, until_annotated=True, until=None, return_runs=True)
    assert plans == [(2, [3, 4, 5]), (2, [1, 0]), (6, [5, 4, 3])]  # nothing annotated before 2: no run back to it
    one_way = plan_runs(10, 2, "forward", {2, 6}, until_annotated=True, until=None, return_runs=False)
    assert one_way == [(2, [3, 4, 5])]


def test_a_run_over_annotations_skips_them_and_stops_at_until():
    assert run_range(10, 1, "forward", {4}, until_annotated=False, until=6) == [2, 3, 5, 6]
    assert run_range(10, 8, "backward", {4}, until_annotated=True, until=None) == [7, 6, 5]
    assert run_range(10, 5, "forward", set(), until_annotated=True, until=3) == []  # behind the start: nothing
    # a run from a frame that is not annotated gets no run back
    assert plan_runs(10, 3, "forward", {0, 6}, until_annotated=True, until=None, return_runs=True) == [(3, [4, 5])]
