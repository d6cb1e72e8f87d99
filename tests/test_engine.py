"""Propagation through the session: memory schedule and bound, annotated frames kept, cancel, caches."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from stm_core.engine.memory import MemoryBank, annotated_memory
from stm_core.engine.results import label_areas
from stm_core.io.masks import add_objects, mask_digest
from stm_core.session import AnnotationSession

from .engine_helpers import square_mask, tiny_session, write_clip


def _kv(i: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((1, 2, 1, 1), float(i)), torch.full((1, 3, 1, 1), float(i))


def test_memory_bank_keeps_annotated_and_evicts_oldest_propagated():
    bank = MemoryBank(max_frames=4)
    bank.add_permanent(0, *_kv(0))
    bank.add_permanent(50, *_kv(50))
    for i in (5, 10, 15, 20):
        bank.add_propagated(i, *_kv(i))
    assert bank.frame_indices() == [0, 50, 15, 20]
    bank.set_temporary(21, *_kv(21))
    keys, values = bank.stacked()
    assert keys.shape == (1, 2, 5, 1, 1) and values.shape[2] == 5
    assert keys[0, 0, :, 0, 0].tolist() == [0, 50, 15, 20, 21]


def test_memory_stays_bounded_on_a_long_run():
    bank = MemoryBank(max_frames=20)
    bank.add_permanent(0, *_kv(0))
    for i in range(1, 10_000):
        bank.set_temporary(i, *_kv(i))
        if i % 5 == 0:
            bank.add_propagated(i, *_kv(i))
        assert len(bank.frame_indices()) <= 21
    assert 0 in bank.frame_indices()


def test_annotated_frames_past_the_cap_keep_the_first_and_the_nearest():
    """QA pass 70: every annotated frame was permanent, so 600 imported annotations made a 600-frame read."""
    assert annotated_memory([0, 10, 20], 15, 3) == [0, 10, 20]
    assert annotated_memory(list(range(0, 600, 10)), 300, 4) == [0, 290, 300, 310]
    assert annotated_memory([3, 50, 90], 0, 1) == [3]
    assert annotated_memory([0, 50, 90], 50, 1) == [50]  # QA pass 71: a run from 50 had only frame 0 in memory
    assert annotated_memory([0, 50, 90], 90, 2) == [0, 90]
    bank = MemoryBank(max_frames=2)
    bank.add_permanent(0, *_kv(0))
    bank.add_permanent(9, *_kv(9))
    with pytest.raises(ValueError, match="annotated_memory"):
        bank.add_permanent(4, *_kv(4))


def test_a_run_with_more_annotated_frames_than_the_cap_reads_a_bounded_memory(tmp_path):
    session = tiny_session(write_clip(tmp_path / "clip", frames=12), mem_every=100, max_memory=3)
    for index in range(0, 12, 2):
        session.set_annotation(index, square_mask())
    sizes = []
    session.propagate(4, "forward", progress=lambda i, d, t: sizes.append(session.memory_status()["memory_frames"]),
                      until_annotated=False)
    assert sizes and max(sizes) <= 3 + 1  # the cap plus the previous frame


@pytest.fixture
def session(tmp_path) -> AnnotationSession:
    return tiny_session(write_clip(tmp_path / "clip", frames=8), mem_every=2, max_memory=3)


def test_forward_propagation_fills_every_frame_and_reports_progress(session):
    session.set_annotation(0, square_mask())
    seen = []
    report = session.propagate(0, "forward", progress=lambda i, d, t: seen.append((i, d, t)))
    assert report.frames == list(range(1, 8)) and not report.cancelled
    assert seen[-1] == (7, 7, 7)
    for i in range(8):
        assert session.labels(i).shape == (48, 80)
        assert session.probability(i, 1).dtype == np.uint8
    unc = session.uncertainty()
    assert unc.shape == (8,) and unc[0] == 0 and np.isfinite(unc[1:]).all()
    assert session.memory_status()["memory_frames"] <= 3 + 1


def test_propagation_never_overwrites_annotated_frames_and_stops_at_them(session):
    first, later = square_mask(t=0), square_mask(t=5)
    later[0:3, 0:3] = 1  # something the network would not predict
    session.set_annotation(0, first)
    session.set_annotation(5, later)
    report = session.propagate(0, "forward")
    assert report.frames == [1, 2, 3, 4, 4, 3, 2, 1]  # and back from frame 5 (tests/test_blend.py)
    assert np.array_equal(session.labels(5), later)
    report = session.propagate(5, "both", until_annotated=False)
    assert 0 not in report.frames and 5 not in report.frames
    assert np.array_equal(session.labels(0), first)


def test_backward_from_a_later_annotation(session):
    session.set_annotation(6, square_mask(t=6))
    report = session.propagate(6, "backward")
    assert report.frames == [5, 4, 3, 2, 1, 0]


def test_until_ends_a_run_and_never_turns_it_around(session):
    """Fifth CLI QA pass: `until` at or behind the start was ignored and the run went to the video's end."""
    session.set_annotation(3, square_mask(t=3))
    assert session.propagate(3, "forward", until=5).frames == [4, 5]
    assert session.propagate(3, "backward", until=1).frames == [2, 1]
    for until in (3, 1):
        assert session.propagate(3, "forward", until=until).frames == []
    assert session.propagate(3, "backward", until=6).frames == []
    with pytest.raises(ValueError):
        session.propagate(3, "both", until=6)


def test_object_appearing_on_a_later_frame_is_tracked(session):
    session.set_annotation(0, square_mask(t=0, label=1))
    both = square_mask(t=4, label=1)
    both[35:45, 60:75] = 7
    session.set_annotation(4, both)
    assert session.object_ids() == [1, 7]
    session.propagate(4, "forward")
    probs = [session.probability(5, o) for o in (1, 7)]
    assert all(p is not None and p.shape == (48, 80) for p in probs)
    assert set(np.unique(session.labels(5))) <= {0, 1, 7}


def test_cancel_leaves_each_frame_old_or_new(session):
    session.set_annotation(0, square_mask())
    session.propagate(0, "forward")
    before = {i: session.labels(i) for i in range(8)}
    session.set_annotation(0, square_mask(t=1))
    cancel = threading.Event()

    def progress(i, done, total):
        if done == 2:
            time.sleep(0.3)  # the network thread computes frames 3 and 4 ahead meanwhile: they must not land
            cancel.set()
    report = session.propagate(0, "forward", progress=progress, cancel=cancel)
    assert report.cancelled and report.frames == [1, 2]
    for i in range(3, 8):
        assert np.array_equal(session.labels(i), before[i])


def _cancel_after(frames: int) -> tuple[threading.Event, callable]:
    """A cancel event set once `frames` results are stored, after the network has had time to run ahead."""
    cancel = threading.Event()

    def progress(i, done, total):
        if done == frames:
            time.sleep(0.3)
            cancel.set()
    return cancel, progress


def _results(session: AnnotationSession) -> list[tuple]:
    return [(session.labels(i).tobytes(), repr(session.snapshot(i).soft())) for i in range(session.num_frames)]


def test_a_cancelled_run_asked_for_again_continues_where_it_stopped(tmp_path):
    """Cancel, then the same run again: the frames the first run stored are kept, the rest computed from the
    memory the first run had reached there (every second frame memorised, the oldest evicted), so the masks are
    those of one uninterrupted run."""
    clip = write_clip(tmp_path / "clip", frames=16)
    whole, resumed = (tiny_session(clip, mem_every=2, max_memory=3) for _ in range(2))
    for s in (whole, resumed):
        torch.manual_seed(0)
        s.prepare()  # the same random network for both
        s.set_annotation(0, square_mask())
    whole.propagate(0, "forward")
    cancel, progress = _cancel_after(5)
    first = resumed.propagate(0, "forward", progress=progress, cancel=cancel)
    assert first.cancelled and first.frames == [1, 2, 3, 4, 5]
    seen = []
    again = resumed.propagate(0, "forward", progress=lambda i, d, t: seen.append((i, d, t)),
                              kept=lambda i, d, t: seen.append(("kept", i, d, t)))
    assert again.reused == [1, 2, 3, 4, 5] and again.frames == list(range(6, 16))
    assert seen[:6] == [("kept", i, i, 15) for i in range(1, 6)] + [(6, 6, 15)] and seen[-1] == (15, 15, 15)
    assert _results(resumed) == _results(whole)
    assert resumed.propagate(0, "forward").reused == list(range(1, 16))  # a finished run is not redone either


def test_only_an_unchanged_run_over_unchanged_results_is_continued(session):
    """A changed annotation, another start or direction, or a result replaced since: computed again from the
    start (or up to the replaced frame, whose result the first run no longer holds)."""
    session.set_annotation(0, square_mask())
    session.propagate(0, "forward")
    session.set_result(3, square_mask(t=3))
    assert session.propagate(0, "forward").reused == [1, 2]
    session.set_annotation(0, square_mask(t=1))
    assert session.propagate(0, "forward").reused == []
    assert session.propagate(2, "forward").reused == []  # from a propagated frame: its result is the seed
    assert session.propagate(2, "forward").reused == [3, 4, 5, 6, 7]
    session.set_annotation(7, square_mask(t=7))
    assert session.propagate(2, "forward").reused == []  # another annotation in memory
    assert session.frames._cache
    session.release_memory()
    assert not session.frames._cache  # QA pass 31: decoded frames stayed (800 MB after scrubbing 1080p)
    assert session.propagate(2, "forward").reused == []  # the engine's memory of the run was cleared


def test_the_finished_half_of_a_run_both_ways_is_kept_when_it_is_asked_for_again(tmp_path):
    session = tiny_session(write_clip(tmp_path / "clip", frames=12), mem_every=2, max_memory=3)
    session.set_annotation(5, square_mask(t=5))
    cancel, progress = _cancel_after(8)  # forward 6..11 (six frames), then backward 4, 3 and cancelled
    first = session.propagate(5, "both", progress=progress, cancel=cancel)
    assert first.cancelled and first.frames[:6] == list(range(6, 12))
    again = session.propagate(5, "both")
    assert again.reused == first.frames and again.frames == [2, 1, 0]


def test_a_run_between_annotated_frames_goes_on_after_a_cancel_in_its_run_back(tmp_path):
    """QA pass 22: cancelled in the run back from the next annotated frame, the run asked for again computed the
    forward frames the run back had blended once more (they no longer matched what the forward run stored), and
    a finished run asked for again changed its masks, blending them again."""
    clip = write_clip(tmp_path / "clip", frames=12)
    whole, resumed = (tiny_session(clip, mem_every=2, max_memory=3) for _ in range(2))
    for s in (whole, resumed):
        torch.manual_seed(0)
        s.prepare()
        s.set_annotation(0, square_mask())
        s.set_annotation(11, square_mask(t=11))
    whole.propagate(0, "forward")
    cancel, progress = _cancel_after(10 + 3)  # forward 1..10, then 10, 9, 8 of the run back from 11
    first = resumed.propagate(0, "forward", progress=progress, cancel=cancel)
    assert first.cancelled and first.frames == [*range(1, 11), 10, 9, 8]
    again = resumed.propagate(0, "forward")
    assert again.reused == first.frames and again.frames == list(range(7, 0, -1))
    assert _results(resumed) == _results(whole)
    assert whole.propagate(0, "forward").frames == [] and _results(resumed) == _results(whole)


def test_a_run_that_stored_nothing_leaves_the_earlier_run_to_go_on(session, monkeypatch):
    """QA pass 22: a run cancelled before its first frame (after a correction, undone then) made the session
    forget the first run's frames, so all were computed again."""
    session.set_annotation(0, square_mask())
    cancel, progress = _cancel_after(3)
    first = session.propagate(0, "forward", progress=progress, cancel=cancel)
    session.set_annotation(0, square_mask(t=1))  # a correction, whose run stops before its first frame
    stop, run = threading.Event(), session._propagator.run
    monkeypatch.setattr(session._propagator, "run", lambda *a, **k: stop.set() or run(*a, **k))
    assert session.propagate(0, "forward", cancel=stop).frames == []
    monkeypatch.undo()
    session.set_annotation(0, square_mask())  # the correction undone
    assert session.propagate(0, "forward").reused == first.frames


def test_an_entering_frame_kept_from_a_cancelled_run_still_takes_its_objects(tmp_path):
    """QA pass 22: cancelled just after the frame where objects enter was stored, every F from the start kept the
    frames up to it, never merged the objects there and stopped."""
    session = tiny_session(write_clip(tmp_path / "clip", frames=10))
    session.set_annotation(0, square_mask())
    entering = np.zeros((48, 80), np.uint8)
    entering[36:46, 60:76] = 2
    session.add_entering(4, entering)
    cancel = threading.Event()
    first = session.propagate(0, "forward", progress=lambda i, d, t: i == 4 and cancel.set(), cancel=cancel)
    assert first.frames == [1, 2, 3, 4] and session.entering_frames() == [4]
    seen = []
    again = session.propagate(0, "forward", progress=lambda *a: seen.append(a), kept=lambda *a: seen.append(a))
    assert again.reused == [1, 2, 3, 4] and again.frames == [5, 6, 7, 8, 9] and session.is_annotated(4)
    assert [d for _, d, _ in seen] == list(range(1, 10)) and {t for _, _, t in seen} == {9}


def test_one_progress_total_for_runs_that_stop_where_objects_enter_and_run_back(tmp_path):
    """QA pass 22: the total counted the run back from the last annotated frame over all frames, so the bar of
    a finished call stopped at 33 of 38."""
    session = tiny_session(write_clip(tmp_path / "clip", frames=10))
    session.set_annotation(0, square_mask())
    session.set_annotation(9, square_mask(t=9))
    entering = np.zeros((48, 80), np.uint8)
    entering[36:46, 60:76] = 2
    session.add_entering(4, entering)
    seen = []
    report = session.propagate(0, "forward", progress=lambda *a: seen.append(a))
    assert report.frames == [1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5]  # to 4, then from 4 to 8 and back from 9
    assert [(d, t) for _, d, t in seen] == [(d, 12) for d in range(1, 13)]


def test_repropagation_reuses_cached_query_features(session):
    session.set_annotation(0, square_mask())
    session.propagate(0, "forward")
    cache = session._propagator._query_cache
    misses = cache.misses
    session.set_annotation(3, square_mask(t=3))
    session.propagate(3, "forward")
    assert cache.misses == misses  # frames 4..7 were already encoded


@pytest.mark.parametrize("until_annotated", [True, False])
def test_painting_during_propagation_wins_and_ends_the_run_there(session, until_annotated):
    """A frame annotated while the run is under way is never overwritten, and the run stops at it as at any
    annotated frame: what lies beyond was to be propagated from it, with it in memory."""
    session.set_annotation(0, square_mask())
    painted = square_mask(t=6)

    def progress(i, done, total):
        if done == 1:
            session.set_annotation(6, painted)
    report = session.propagate(0, "forward", progress=progress, until_annotated=until_annotated)
    assert np.array_equal(session.labels(6), painted)
    assert report.frames == ([1, 2, 3, 4, 5] if until_annotated else [1, 2, 3, 4, 5, 7])
    assert report.stopped_at == (6 if until_annotated else None)
    assert session.has_result(7) is not until_annotated


def test_an_annotation_removed_gives_back_the_result_from_before(session):
    """Undoing the first stroke on a frame restores its propagated result with its soft maps, or no mask."""
    session.set_annotation(0, square_mask())
    session.propagate(0, "forward")
    labels, prob, unc = session.labels(3), session.probability(3, 1), session.uncertainty()[3]
    session.set_annotation(3, square_mask(t=1))
    session.remove_annotation(3)
    assert np.array_equal(session.labels(3), labels) and np.array_equal(session.probability(3, 1), prob)
    assert session.uncertainty()[3] == unc
    empty = AnnotationSession(session.frames, session.settings)
    empty.set_annotation(2, square_mask(t=2))
    empty.remove_annotation(2)
    assert not empty.has_result(2) and empty.labels(2) is None


def test_a_rebuilt_session_keeps_soft_maps_and_uncertainty(session):
    session.set_annotation(0, square_mask())
    session.propagate(0, "forward")
    fresh = AnnotationSession(session.frames, session.settings)
    fresh.copy_masks_from(session)
    assert fresh.annotated_frames() == [0]
    for i in range(8):
        assert np.array_equal(fresh.labels(i), session.labels(i))
        assert np.array_equal(fresh.probability(i, 1), session.probability(i, 1))
    assert np.array_equal(fresh.uncertainty(), session.uncertainty())


def test_bad_annotation_size_and_empty_propagation_raise(session):
    with pytest.raises(ValueError, match="mask is"):
        session.set_annotation(0, np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="paint a mask"):
        session.propagate(0)


def test_each_annotation_is_counted_and_digested_once_however_often_it_is_asked(session, monkeypatch):
    """QA passes 26-27: every stroke and every run counted each annotated frame's objects afresh (np.unique)
    and every run digested each annotation: with a mask on each of 800 frames, seconds per stroke, and a CLI
    run per mask grew with the square of their number. Replacing or removing an annotation still counts."""
    import stm_core.engine.annotations as annotations_module
    import stm_core.engine.propagator as propagator_module
    counted, digested = [], []
    monkeypatch.setattr(annotations_module, "label_areas", lambda a: counted.append(1) or label_areas(a))
    monkeypatch.setattr(propagator_module, "mask_digest", lambda a: digested.append(1) or mask_digest(a))
    for i in range(4):
        session.set_annotation(i, square_mask(t=i, label=1 + i % 2))
    for _ in range(3):
        assert session.object_ids() == [1, 2]
        session.propagate(3, "forward")
    assert (len(counted), len(digested)) == (4, 3)  # the run's seed, frame 3's result: digested per run
    session.set_annotation(1, square_mask(t=1, label=1))
    session.set_annotation(3, square_mask(t=3, label=7))
    assert session.object_ids() == [1, 7] and len(counted) == 6
    session.remove_annotation(3)
    session.remove_object(1)
    assert session.object_ids() == []


def test_remove_object_erases_it_everywhere(session):
    m = square_mask()
    m[40:44, 70:76] = 2
    session.set_annotation(0, m)
    session.propagate(0, "forward")
    before = session.uncertainty()
    session.remove_object(2)
    assert session.object_ids() == [1]
    assert all(2 not in np.unique(session.labels(i)) for i in range(8))
    # fifth CLI QA pass: the uncertainty still counted the removed object's boundaries
    after = session.uncertainty()
    assert not np.allclose(before[1:], after[1:]) and np.isfinite(after[1:]).all()
    session.remove_object(1)
    assert np.isnan(session.uncertainty()[1:]).all()


def test_removing_an_object_while_a_run_goes_on_ends_the_run_and_the_object_stays_gone(session):
    """QA pass 27: `remove_object` from another thread during `propagate` erased the object, and the run's later
    results brought it back."""
    m = square_mask()
    m[40:44, 70:76] = 2
    session.set_annotation(0, m)

    def progress(index: int, done: int, total: int) -> None:
        if index == 2:  # another thread removes it now; the run's next frames are computed already
            remover = threading.Thread(target=session.remove_object, args=(2,))
            remover.start()
            remover.join()
    report = session.propagate(0, "forward", progress=progress)
    assert report.cancelled and report.frames == [1, 2]
    assert all(session.labels(i) is None or 2 not in session.labels(i) for i in range(8))


def test_objects_entering_mid_video_join_where_a_forward_run_reaches_them(session):
    """Sixth GUI QA pass: Cutie/XMem masks imported before propagating (each shows only the object entering
    there) became annotated frames without the objects already tracked, so those frames lost them for good."""
    session.set_annotation(0, square_mask())
    entering = np.zeros((48, 80), np.uint8)
    entering[36:46, 60:76] = 2
    assert session.add_entering(4, entering) is False  # no mask there yet: it waits for a run
    assert session.entering_frames() == [4] and session.labels(4).tolist() == entering.tolist()
    seen, entered, propagated = [], [], {}

    def progress(i: int, done: int, total: int) -> None:
        seen.append((i, done, total))
        propagated.setdefault(i, session.labels(i))  # frame 4's result, before the entering object joins it
    report = session.propagate(0, "forward", progress=progress, entered=entered.append)
    assert entered == [4] and session.entering_frames() == [] and session.is_annotated(4)
    # the tracked object kept as the run left it, the new one added
    assert np.array_equal(session.annotation(4), add_objects(propagated[4], entering))
    assert all(2 not in np.unique(session.labels(i)) for i in (1, 2, 3))  # not tracked before it enters
    assert report.frames[:4] == [1, 2, 3, 4] and 7 in report.frames and [d for _, d, _ in seen] == sorted(
        d for _, d, _ in seen)  # one count across the runs
    assert all(total == 7 for _, _, total in seen)  # and one total (QA pass 21: 4 of 4 done, then 5 of 7)
    # a frame that already has a mask takes the entering object at once
    entering3 = np.zeros((48, 80), np.uint8)
    entering3[0:6, 0:8] = 3
    before = session.labels(6)
    assert session.add_entering(6, entering3) is True
    assert np.array_equal(session.annotation(6), add_objects(before, entering3))


def test_an_object_entering_later_leaves_the_run_back_from_an_annotated_frame_before_it(tmp_path):
    """QA pass 21: with an object entering on frame 7, the run from 0 stopped at the annotated frame 5 without
    the run back from it, so frames 1-4 lost the blend of both sides."""
    clip = write_clip(tmp_path / "clip", frames=8)
    entering = np.zeros((48, 80), np.uint8)
    entering[36:46, 60:76] = 2
    sessions = []
    for enters in (False, True):
        s = tiny_session(clip)
        torch.manual_seed(0)
        s.prepare()  # the same random network for both
        s.set_annotation(0, square_mask())
        s.set_annotation(5, square_mask(t=5))
        if enters:
            s.add_entering(7, entering)
        assert s.propagate(0, "forward").frames == [1, 2, 3, 4, 4, 3, 2, 1]
        sessions.append(s)
    assert all(np.array_equal(sessions[0].labels(i), sessions[1].labels(i)) for i in range(1, 5))
    assert all(repr(sessions[0].snapshot(i).soft()) == repr(sessions[1].snapshot(i).soft()) for i in range(1, 5))


def test_entering_objects_wait_through_backward_runs_and_leave_with_their_object(session):
    session.set_annotation(5, square_mask(t=5))
    entering = np.zeros((48, 80), np.uint8)
    entering[36:46, 60:76] = 2
    session.add_entering(6, entering)
    session.propagate(5, "backward", entered=lambda i: pytest.fail("a backward run merged"))
    assert session.entering_frames() == [6] and not session.is_annotated(6)
    session.set_annotation(6, square_mask(t=6))  # painted there: the annotation shadows the entering object
    assert session.entering_frames() == []
    session.remove_annotation(6)  # its first stroke undone: the object enters there again
    assert session.entering_frames() == [6]
    session.remove_object(2)
    assert session.entering_frames() == [] and session.labels(6) is None


def test_an_object_first_painted_later_is_not_sought_before_that_frame(session, monkeypatch):
    """Sixth GUI QA pass: object 2, painted on frame 26 only, appeared on frames 2-20 of a run from frame 0
    (frames 0 and 25 annotated without it): every annotated frame is in memory, and every object was sought."""
    session.set_annotation(0, square_mask())
    session.set_annotation(4, square_mask(t=4))
    later = square_mask(t=6)
    later[36:46, 60:76] = 2
    session.set_annotation(6, later)
    sought = []
    run = session._propagator.run
    monkeypatch.setattr(session._propagator, "run", lambda *a, **k: sought.append(list(a[5])) or run(*a, **k))
    session.propagate(0, "forward")  # to frame 4, and the run back from it
    assert sought == [[1], [1]] and all(2 not in np.unique(session.labels(i)) for i in (1, 2, 3))
    session.propagate(6, "both")  # from the frame that shows it, it is tracked both ways; the run back from
    assert sought[2:] == [[1, 2], [1, 2], [1]]  # frame 4 to frame 5 seeks only what frame 4 knows, and blends
    assert session.snapshot(5).soft()[0] == [1, 2]


def test_a_run_from_an_all_background_frame_seeks_no_object_painted_later(session, monkeypatch):
    """QA pass 52: a forward run from frame 0, annotated all background, sought every object, so one painted on
    a later frame only was drawn on the frames before it at full strength. Seeking none, the run makes those
    frames background (stored, counted) without the network; the run back from frame 6 seeks the object and
    blends with it, so the object fades out towards frame 0."""
    later = np.zeros((48, 80), np.uint8)
    later[36:46, 60:76] = 2
    session.set_annotation(6, later)
    session.propagate(6, "backward")  # the object is sought back from the frame that shows it
    assert all(2 in np.unique(session.labels(i)) for i in range(0, 6))
    session.set_annotation(0, np.zeros((48, 80), np.uint8))  # then it is marked absent on frame 0
    sought = []
    run = session._propagator.run
    monkeypatch.setattr(session._propagator, "run", lambda *a, **k: sought.append(list(a[5])) or run(*a, **k))
    seen = []
    report = session.propagate(0, "forward", progress=lambda i, d, t: seen.append((i, d, t)))
    assert sought == [[2]] and report.frames == [1, 2, 3, 4, 5, 5, 4, 3, 2, 1] and seen[-1] == (1, 10, 10)
    for i in range(1, 6):
        ids, soft = session.snapshot(i).soft()
        assert ids == [2] and soft.max() <= np.ceil(255 * i / 6)  # the run back from 6 weighs i/6 there
    assert not session.labels(1).any() and not session.labels(2).any()


def test_the_same_frames_propagated_from_either_side_give_the_same_masks(session):
    """QA pass 62: with object 2 first painted on frame 4, Shift+F there drew it on frames 1-3 and F on frame 0
    erased it again, each undoing the other with nothing changed: the run back from frame 4 sought fewer objects
    than a run the user started there. Now both seek the same, and a key pressed again keeps every frame."""
    session.set_annotation(0, square_mask())
    later = square_mask(t=4)
    later[36:46, 60:76] = 2
    session.set_annotation(4, later)
    masks = []
    for start, direction in ((0, "forward"), (4, "backward"), (0, "forward"), (4, "backward")):
        report = session.propagate(start, direction)
        masks.append([session.labels(i) for i in (1, 2, 3)])
    assert report.frames == [] and sorted(report.reused) == [1, 1, 2, 2, 3, 3]  # the same key again: kept
    for a, b in zip(masks[0], masks[1]):
        assert np.mean(a != b) < 0.002  # the same two runs blended (rounding of the weights aside)


def test_objects_entering_stay_absent_before_their_frame_at_every_propagation(session, monkeypatch):
    """QA pass 60: objects imported to enter on frame 5 after an all-background frame 0 were left out before it
    by the first F, and drawn there by the next, whose run back from frame 5 (annotated by then) sought them."""
    entering = np.zeros((48, 80), np.uint8)
    entering[36:46, 60:76] = 2
    session.set_annotation(0, np.zeros((48, 80), np.uint8))
    session.add_entering(5, entering)
    sought = []
    run = session._propagator.run
    monkeypatch.setattr(session._propagator, "run", lambda *a, **k: sought.append(list(a[5])) or run(*a, **k))
    for _ in range(2):
        session.propagate(0, "forward")
        assert all(not session.labels(i).any() for i in range(1, 5)) and 2 in np.unique(session.labels(6))
    assert sought == [[2]]  # the first F from frame 5 on; the second seeks nothing before it, and keeps the rest
    assert session.entered() == {5: [2]}
    session.remove_object(2)
    assert session.entered() == {5: []} or not session.is_annotated(5)


def test_objects_painted_over_while_waiting_to_enter_still_enter_there_until_the_frame_is_cleared(session):
    """QA pass 63: a stroke on the frame where imported objects wait to enter annotated it with them, and the
    next run back from it drew them before it; and after the frame was cleared and painted by hand, its objects
    were still taken for entering ones, not sought back from it."""
    session.set_annotation(0, square_mask())
    entering = np.zeros((48, 80), np.uint8)
    entering[36:46, 60:76] = 2
    session.add_entering(5, entering)
    session.set_annotation(5, add_objects(square_mask(t=5), entering))  # a stroke there, as the app makes it
    assert session.entered() == {5: [2]}
    session.propagate(0, "forward")
    assert all(2 not in np.unique(session.labels(i)) for i in range(1, 5))
    session.remove_annotation(5)  # its first stroke undone: the objects wait there again
    assert session.entered() == {} and session.entering_frames() == [5]
    session.propagate(0, "forward")  # a run reaches them: they enter, as an annotation
    assert session.entered() == {5: [2]}
    session.remove_annotation(5)  # cleared, then painted by hand: a painted object, sought back from there
    session.set_annotation(5, add_objects(square_mask(t=5), entering))
    assert session.entered() == {}


def test_a_blend_with_a_run_that_sought_nothing_does_not_ask_for_the_same_network():
    """QA pass 60: with adaptation on, the adapted run back replaced the background results of a run that
    sought nothing (made without any network) instead of blending with them."""
    from stm_core.engine.annotations import Annotations
    from stm_core.engine.frame_outputs import FrameResult
    from stm_core.engine.results import ResultStore
    from stm_core.engine.blend import blended_result

    annotations = Annotations.of({0: np.zeros((4, 6), np.uint8), 4: np.ones((4, 6), np.uint8)})
    store = ResultStore()
    store.put(2, np.zeros((4, 6), np.uint8), np.zeros((0, 4, 6), np.uint8), [], 0.0, (0, annotations.digest(0), ()))
    mine = FrameResult(2, np.ones((4, 6), np.uint8), np.full((1, 4, 6), 255, np.uint8), 0.2,
                       network=annotations.key())
    labels, probs, ids, _, own = blended_result(mine, store, (4, annotations.digest(4)), [1], annotations, (4, 6))
    assert ids == [1] and (probs == 128).all() and own is not None  # half each: 255 and 0


def test_a_run_after_an_undone_change_of_its_start_computes_again(session):
    """QA pass 58: a run from frame 0, its mask changed and propagated, then changed back, took the changed run's
    results as its own, kept from before (the record of a pass was keyed by its start and first frame only)."""
    session.set_annotation(0, square_mask())
    session.set_annotation(6, square_mask(t=6))
    session.propagate(0, "forward")
    first = [session.labels(i) for i in range(1, 6)]
    for changed in (np.zeros((48, 80), np.uint8), square_mask(t=3)):
        session.set_annotation(0, changed)
        session.propagate(0, "forward")
        session.set_annotation(0, square_mask())  # undone
        report = session.propagate(0, "forward")
        assert report.reused == [] and report.frames == [1, 2, 3, 4, 5, 5, 4, 3, 2, 1]
        assert all(np.array_equal(session.labels(i), f) for i, f in zip(range(1, 6), first))


def test_propagating_with_no_object_anywhere_says_so(session):
    session.set_annotation(0, np.zeros((48, 80), np.uint8))
    with pytest.raises(ValueError, match="no objects to propagate"):
        session.propagate(0, "forward")
    entering = np.zeros((48, 80), np.uint8)  # QA pass 58: an object waiting to enter is one to propagate
    entering[36:46, 60:76] = 2
    session.add_entering(5, entering)
    session.propagate(0, "forward")
    assert not session.labels(3).any() and session.is_annotated(5) and session.snapshot(7).soft()[0] == [2]


def test_processing_resolution_returns_source_size(tmp_path):
    s = tiny_session(write_clip(tmp_path / "c", frames=3, size=(96, 160)), process_height=64)
    s.set_annotation(0, np.kron(square_mask(), np.ones((2, 2), np.uint8)))
    s.propagate(0, "forward")
    assert s.labels(2).shape == (96, 160) and s.probability(2, 1).shape == (96, 160)


def test_working_size_short_side_and_small_frames():
    """The working height is a landscape frame's height and a portrait frame's width; frames under 128 px are
    scaled up (seventh GUI QA pass: at 64x48 the network saw 4x3 feature cells and every mask came out empty)."""
    from stm_core.engine.frame_prep import Geometry

    assert Geometry.for_source((480, 854), 240).work == (240, 427)
    assert Geometry.for_source((1920, 1080), 240).work == (427, 240)
    assert Geometry.for_source((480, 854), None).work == (480, 854)
    assert Geometry.for_source((30, 40), 240).work == (128, 171)
    assert Geometry.for_source((48, 64), None).work == (128, 171)
    assert Geometry.for_source((1600, 90), 240).work == (1600, 90)  # a sliver: scaling up would pass 1024
    assert Geometry.for_source((77, 101), 99).work == (99, 130)  # QA pass 30: a smaller height asked for, 128 used
    assert Geometry.for_source((77, 101), 77).work == (77, 101)


def test_the_shipped_model_tracks_an_object_in_a_tiny_video(tmp_path):
    """40x30 px (seventh GUI QA pass): IoU 0.0 on every propagated frame before small frames were scaled up."""
    from stm_core.engine.settings import EngineSettings

    rng = np.random.default_rng(3)
    background = rng.integers(0, 120, (30, 40, 3), dtype=np.uint8)
    truth = []
    (tmp_path / "c").mkdir()
    for t in range(5):
        frame, mask = background.copy(), np.zeros((30, 40), np.uint8)
        frame[10:20, 10 + t:23 + t], mask[10:20, 10 + t:23 + t] = (200, 90, 40), 1
        Image.fromarray(frame).save(tmp_path / "c" / f"{t:05d}.png")
        truth.append(mask)
    s = AnnotationSession.open(tmp_path / "c", EngineSettings(device="cpu", adapt_steps=0))
    s.set_annotation(0, truth[0])
    s.propagate(0, "forward")
    ious = [((s.labels(t) == 1) & (truth[t] == 1)).sum() / ((s.labels(t) == 1) | (truth[t] == 1)).sum()
            for t in range(1, 5)]
    assert min(ious) > 0.8, ious
    assert s.memory_status()["working_height"] == 128  # what the status bar shows, not the 176 px setting


def test_many_objects_at_a_reduced_working_height(tmp_path):
    """Six objects downscaled by a non-integer factor (OpenCV's area resize then takes at most 4 channels)."""
    s = tiny_session(write_clip(tmp_path / "c", frames=3, size=(96, 160)), process_height=64)
    labels = np.zeros((96, 160), np.uint8)
    for k in range(6):
        labels[8:40, 4 + 26 * k:24 + 26 * k] = k + 1
    s.set_annotation(0, labels)
    s.propagate(0, "forward")
    assert s.labels(2).shape == (96, 160) and s.probability(2, 6).shape == (96, 160)


def test_weights_can_recommend_a_working_height(tmp_path):
    from stm_core.engine.settings import EngineSettings
    from stm_core.model.checkpoint import save_weights
    from stm_core.model.config import STM_SMALL
    from stm_core.model.stm import STM

    save_weights(STM(STM_SMALL), tmp_path / "w.pt", {"process_height": 96})
    folder = write_clip(tmp_path / "c", frames=3)
    s = AnnotationSession.open(folder, EngineSettings(weights=str(tmp_path / "w.pt"), device="cpu"))
    assert s.memory_status()["working_height"] == 0  # not known before the weights load (QA pass 75: 1080 px)
    s.prepare()
    assert s.memory_status()["working_height"] == 96  # the 48 px frames scaled up to the height asked for
    for setting, expected in ((None, 96), (0, 0), (64, 64)):
        s = AnnotationSession.open(folder, EngineSettings(weights=str(tmp_path / "w.pt"), device="cpu",
                                                          process_height=setting))
        s.set_annotation(0, square_mask())
        s.propagate(0, "forward")
        assert s.memory_status()["process_height"] == expected
        assert s.labels(2).shape == (48, 80)


def test_memory_status_never_loads_the_network(tmp_path):
    """QA pass 105: the status bar's poll loaded the weights (or waited 1.6-3.4 s for the warm-up thread that
    loaded them) on the GUI thread, right after a video opened."""
    from stm_core.engine.settings import EngineSettings

    session = AnnotationSession.open(write_clip(tmp_path / "clip", frames=2),
                                     EngineSettings(device="cpu", adapt_steps=None))  # as the app asks
    status = session.memory_status()
    assert session._propagator._model is None
    assert status["model"] == "" and status["working_height"] == 0
    session.prepare()
    loaded = session.memory_status()
    assert loaded["model"] == "stm-small" and loaded["process_height"] > 0 and loaded["working_height"] > 0


def test_memory_status_while_results_arrive_from_another_thread(tmp_path):
    """The status bar polls memory while the propagation thread stores results (a 10,000-frame app run
    once failed here with 'dictionary changed size during iteration')."""
    session = tiny_session(write_clip(tmp_path / "clip", frames=2))
    labels = square_mask()
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            with session._lock:  # as `propagate` stores each frame
                session._results.put(i, labels, None)
            i += 1
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often so that an unlocked read would collide
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(300):
            assert session.memory_status()["result_bytes"] >= 0
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)


def test_warm_up_changes_no_result(tmp_path):
    """Warming up (the application does it when a video opens) only makes the first frame come sooner."""
    clip = write_clip(tmp_path / "clip", frames=6)
    masks = []
    for warm in (False, True):
        s = tiny_session(clip)
        torch.manual_seed(0)  # the same random network for both
        s.prepare()
        s.set_annotation(0, square_mask())
        if warm:
            s.warm_up()
        s.propagate(0, "forward")
        masks.append([s.labels(i) for i in range(6)])
    assert all(np.array_equal(a, b) for a, b in zip(*masks))


def test_warm_up_during_a_propagation_returns_at_once(session):
    """The application may warm up a session that is already propagating: nothing must wait or change."""
    session.set_annotation(0, square_mask())
    returned = []
    session.propagate(0, "forward", progress=lambda i, d, t: (session.warm_up(), returned.append(i)))
    assert returned == list(range(1, 8))


def test_the_library_refuses_bad_calls_with_one_line(tmp_path):
    """Seventh CLI QA pass: the API took a mistyped direction (and ran backward), frames outside the video
    (-1 wrapped onto the last frame), float, 3-D and label-255 masks, and settings the CLI refuses (blank masks
    at process_height 7, an OpenCV assertion at -5); a session of another video was copied in."""
    from stm_core.engine.settings import EngineSettings
    from stm_core.errors import SettingsError

    s = tiny_session(write_clip(tmp_path / "c", frames=3))
    s.set_annotation(0, square_mask())
    with pytest.raises(ValueError, match="direction must be 'forward', 'backward' or 'both', not 'Forward'"):
        s.propagate(0, "Forward")
    for call in (s.set_annotation, s.add_entering, s.set_result):
        for index in (-1, 3):
            with pytest.raises(IndexError, match=f"frame {index} is outside 0..2"):
                call(index, square_mask())
    with pytest.raises(ValueError, match="must be integers"):
        s.set_annotation(1, square_mask() * 1.7)
    with pytest.raises(ValueError, match="2-D label map"):
        s.set_annotation(1, np.stack([square_mask()] * 3, axis=2))
    with pytest.raises(ValueError, match="0..254"):
        s.set_annotation(1, square_mask() * 255)
    s.set_annotation(1, square_mask() > 0)  # booleans are one object
    assert s.annotated_frames() == [0, 1] and s.labels(1).max() == 1
    other = tiny_session(write_clip(tmp_path / "d", frames=3, size=(64, 64)))
    with pytest.raises(ValueError, match="another video"):
        s.copy_masks_from(other)
    for field, value in (("process_height", 7), ("process_height", -5), ("top_k", 0), ("adapt_steps", -3),
                         ("max_memory", 0), ("model", "stm-tiny"), ("device", "gpu"), ("mem_every", 2.5),
                         ("max_memory", "20"), ("process_height", 100.5), ("top_k", True)):
        with pytest.raises(SettingsError, match=f"^{field} must be"):
            EngineSettings(**{field: value})
    assert EngineSettings(device="cuda:1", mem_every=np.int64(3)).mem_every == 3
    # QA pass 21: getters took frames outside the video (-1 gave the last frame), a NumPy index was kept as one
    for call in (s.frame, s.labels, s.annotation, s.remove_annotation, s.snapshot, s.entering_labels,
                 lambda i: s.probability(i, 1)):
        for index in (-1, 3):
            with pytest.raises(IndexError, match=f"frame {index} is outside 0..2"):
                call(index)
    s.set_annotation(np.int64(2), square_mask())
    assert s.annotated_frames() == [0, 1, 2] and type(s.annotated_frames()[2]) is int
    with pytest.raises(ValueError, match=r"one per object id: got uint8 \[2, 48, 80\] for 1 object ids"):
        s.set_result(1, square_mask(), soft=([1], np.zeros((2, 48, 80), np.uint8)))


@pytest.mark.parametrize("shared", [True, False])
def test_small_working_sizes_share_the_cores_between_the_two_compute_threads(session, monkeypatch, shared):
    """On two cores, frames of up to 360 px ran 8-30% faster with one intra-op thread for the network thread
    and one for the look-ahead thread than with both driving both cores; 480 px ran 5% slower, so it keeps
    them all (BENCHMARKS.md)."""
    from stm_core.engine import propagator as propagator_module
    from stm_core.engine.hardware import caller_threads

    if not shared:
        monkeypatch.setattr(propagator_module, "SHARED_CORES_MAX_PIXELS", 0)
    seen: dict[str, set[int]] = {"network": set(), "look-ahead": set(), "asked meanwhile": set()}
    real_segment, real_encode = propagator_module.STM.segment, propagator_module.Propagator._encode_ahead

    def segment(*args, **kwargs):
        seen["network"].add(torch.get_num_threads())
        seen["asked meanwhile"].add(caller_threads())  # what a run started now would ask for
        return real_segment(*args, **kwargs)
    monkeypatch.setattr(propagator_module.STM, "segment", segment)

    def encode_ahead(self, model, frames, geo, threads, index):
        result = real_encode(self, model, frames, geo, threads, index)
        seen["look-ahead"].add(torch.get_num_threads())
        return result
    monkeypatch.setattr(propagator_module.Propagator, "_encode_ahead", encode_ahead)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    after: list[int] = []
    try:
        session.set_annotation(0, square_mask())
        session.propagate(0, "forward")
        # QA pass 80: the count is process-wide, and the halved one stayed: every later run used one core
        reader = threading.Thread(target=lambda: after.append(torch.get_num_threads()))
        reader.start()
        reader.join()
    finally:
        torch.set_num_threads(before)
    each = 1 if shared else 2
    assert seen == {"network": {each}, "look-ahead": {each}, "asked meanwhile": {2}} and after == [2]


def test_a_propagated_mask_is_memorised_with_zeros_in_the_padding(tmp_path, monkeypatch):
    """QA pass 89: the official code memorises a propagated frame's soft mask cut to the frame and padded again
    with zeros; the engine memorised the network's own predictions in the padding (up to 0.9999 there)."""
    from stm_core.engine.frame_prep import Geometry
    from stm_core.model.stm import STM

    seen: list[torch.Tensor] = []
    memorize = STM.memorize

    def recording(self, frame, probs, *args, **kwargs):
        seen.append(probs.detach().float().clone())
        return memorize(self, frame, probs, *args, **kwargs)

    monkeypatch.setattr(STM, "memorize", recording)
    session = tiny_session(write_clip(tmp_path / "clip", frames=5, size=(48, 70)), process_height=0,
                           adapt_steps=0, fast=False)
    session.set_annotation(0, square_mask((48, 70)))
    session.propagate(0, "forward")
    geo = Geometry.for_source((48, 70), None)  # a frame this small is worked on enlarged, 187 columns padded to 192
    left, right, top, bottom = geo.pads
    assert len(seen) >= 4 and left + right > 0
    assert {tuple(p.shape[-2:]) for p in seen} == {(geo.work[0] + top + bottom, geo.work[1] + left + right)}
    outside = [p.clone() for p in seen]
    for p in outside:
        p[..., top:p.shape[-2] - bottom, left:p.shape[-1] - right] = 0
    assert [float(p.abs().max()) for p in outside] == [0.0] * len(seen)
    assert max(float(p.max()) for p in seen[1:]) > 0.5  # what is inside is the propagated mask
