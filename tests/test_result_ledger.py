"""The result ledger alone: which results are out of date as annotations change, without Qt or a network."""

from __future__ import annotations

import numpy as np

from app.result_ledger import ResultLedger


class _Annotations:
    """Stands in for the session's annotation digests."""

    def __init__(self) -> None:
        self.digests: dict[int, str] = {}

    def digest_of(self, frame: int) -> str | None:
        return self.digests.get(frame)

    def paint(self, ledger: ResultLedger, frame: int, digest: str | None) -> None:
        if digest is None:
            self.digests.pop(frame, None)
        else:
            self.digests[frame] = digest
        ledger.take_digests([frame], self.digest_of)
        ledger.has_result[frame] = True
        ledger.mark_around(frame, set(self.digests))


def _propagated(n: int = 10, annotated: tuple[int, ...] = (0,)) -> tuple[ResultLedger, _Annotations]:
    """A ledger with these frames annotated and every other frame propagated from them."""
    ledger, annotations = ResultLedger(np.zeros(n, bool)), _Annotations()
    for frame in annotated:
        annotations.paint(ledger, frame, f"frame {frame}")
    for frame in set(range(n)) - set(annotated):
        assert not ledger.note_result(frame, ledger.key, preview=False, annotated=False)
    return ledger, annotations


def test_a_correction_outdates_results_up_to_the_next_annotation_and_undoing_it_makes_them_current():
    ledger, annotations = _propagated(annotated=(0, 7))
    before = ledger.key
    annotations.paint(ledger, 4, "correction")
    assert ledger.key != before
    assert np.flatnonzero(ledger.stale).tolist() == [1, 2, 3, 5, 6]  # not past the annotated 0 and 7
    annotations.paint(ledger, 4, None)  # undone: the key is the one the results were made from
    assert ledger.key == before
    assert not ledger.stale.any()


def test_the_key_names_annotations_by_content_not_by_order_of_painting():
    first, a = _propagated()
    second, b = _propagated()
    a.paint(first, 3, "x")
    a.paint(first, 6, "y")
    b.paint(second, 6, "y")
    b.paint(second, 3, "x")
    assert first.key == second.key


def test_a_preview_is_out_of_date_and_the_result_it_replaced_comes_back_when_current_again():
    ledger, annotations = _propagated()
    current = ledger.key
    annotations.paint(ledger, 5, "correction")
    assert not ledger.note_result(6, ledger.key, preview=True, annotated=False)
    assert ledger.is_preview(6) and ledger.stale[6]
    assert ledger.before_preview == {6: current}
    assert ledger.replaced_current(set(annotations.digests)) == []  # the correction still stands
    annotations.paint(ledger, 5, None)
    assert ledger.replaced_current(set(annotations.digests)) == [6]
    assert ledger.before_preview == {}


def test_a_result_stored_after_its_frame_was_annotated_is_never_out_of_date():
    ledger, annotations = _propagated()
    old = ledger.key
    annotations.paint(ledger, 3, "painted meanwhile")
    ledger.note_result(3, old, preview=False, annotated=True)
    assert not ledger.stale[3]
    ledger.note_result(2, old, preview=False, annotated=False)
    assert ledger.stale[2]


def test_entering_objects_carry_the_runs_results_to_the_new_key():
    ledger, annotations = _propagated()
    run_key = ledger.key
    annotations.digests[8] = "entered"
    later = ledger.note_entered(8, run_key, annotations.digest_of)
    assert later == ledger.key != run_key
    assert all(k == ledger.key for k in ledger.result_keys[1:8])
    assert not ledger.stale.any()


def test_reopened_work_judges_saved_results_and_forgets_unreadable_ones():
    annotations = _Annotations()
    annotations.digests[0] = "first"
    has = np.array([True, True, True, False, False])
    ledger = ResultLedger.reopened(has, [0], annotations.digest_of, stale=[2], loading=[3, 4, 9],
                                   loading_uncertainty={3: 0.25})
    assert ledger.loading == {3, 4}  # a frame past the video's end is ignored
    assert np.flatnonzero(ledger.stale).tolist() == [2]  # unknown annotations made frame 2's result
    unc = ledger.with_loading_uncertainty(np.full(5, np.nan))
    assert unc[3] == 0.25 and np.isnan(unc[4])
    ledger.note_loaded(3)
    ledger.loading_done()  # frame 4's file could not be read: it has no result to be out of date
    assert ledger.result_keys[4] is None and not ledger.stale[4] and ledger.result_keys[3] == ledger.key
