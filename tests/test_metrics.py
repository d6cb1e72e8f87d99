"""DAVIS J/F: the definitions, the protocol (frames 1..N-2, void, objects), and the published STM numbers."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from stm_core.errors import InputError
from stm_core.io.masks import write_mask
from stm_core.metrics import (evaluate_dirs, evaluate_sequence, f_boundary, format_table, jaccard,
                              seg2bmap)

from .conftest import require_shared


def _reference_seg2bmap(seg: np.ndarray) -> np.ndarray:
    """Pixel-by-pixel transcription of the toolkit's rule, to check the vectorised one."""
    h, w = seg.shape
    b = np.zeros_like(seg, dtype=bool)
    for y in range(h):
        for x in range(w):
            east = seg[y, x + 1] if x + 1 < w else False
            south = seg[y + 1, x] if y + 1 < h else False
            se = seg[y + 1, x + 1] if x + 1 < w and y + 1 < h else False
            if y == h - 1 and x == w - 1:
                b[y, x] = False
            elif y == h - 1:
                b[y, x] = seg[y, x] != east
            elif x == w - 1:
                b[y, x] = seg[y, x] != south
            else:
                b[y, x] = seg[y, x] != east or seg[y, x] != south or seg[y, x] != se
    return b


def _reference_f(gt: np.ndarray, pred: np.ndarray, radius: int) -> float:
    """F with whole-image dilation, as the toolkit does it."""
    r = np.arange(-radius, radius + 1)
    disk = (r[:, None] ** 2 + r[None, :] ** 2 <= radius ** 2).astype(np.uint8)
    gb, pb = _reference_seg2bmap(gt), _reference_seg2bmap(pred)
    n_g, n_p = gb.sum(), pb.sum()
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    precision = (pb & cv2.dilate(gb.astype(np.uint8), disk).astype(bool)).sum() / n_p
    recall = (gb & cv2.dilate(pb.astype(np.uint8), disk).astype(bool)).sum() / n_g
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def test_jaccard() -> None:
    empty = np.zeros((4, 4), bool)
    a = empty.copy()
    a[:2] = True
    b = empty.copy()
    b[1:3] = True
    assert jaccard(empty, empty) == 1.0
    assert jaccard(a, empty) == 0.0
    assert jaccard(a, a) == 1.0
    assert jaccard(a, b) == pytest.approx(4 / 12)


def test_f_boundary_basics() -> None:
    empty = np.zeros((30, 40), bool)
    box = empty.copy()
    box[5:20, 10:30] = True
    assert f_boundary(empty, empty) == 1.0
    assert f_boundary(box, empty) == 0.0 and f_boundary(empty, box) == 0.0
    assert f_boundary(box, box) == 1.0
    shifted = np.roll(box, 3, axis=1)
    assert f_boundary(box, shifted, bound_th=3) == 1.0
    assert f_boundary(box, shifted, bound_th=1) < 1.0


def test_seg2bmap_edges() -> None:
    seg = np.zeros((4, 5), bool)
    seg[1:3, 1:4] = True
    assert np.array_equal(seg2bmap(seg), _reference_seg2bmap(seg))
    full = np.ones((3, 3), bool)
    assert not seg2bmap(full).any()


@settings(max_examples=60, deadline=None)
@given(arrays(bool, (14, 17)), arrays(bool, (14, 17)), st.integers(1, 4))
def test_f_boundary_matches_whole_image_reference(gt: np.ndarray, pred: np.ndarray, radius: int) -> None:
    assert np.array_equal(seg2bmap(gt), _reference_seg2bmap(gt))
    assert f_boundary(gt, pred, bound_th=radius) == pytest.approx(_reference_f(gt, pred, radius), abs=1e-12)


def test_default_tolerance_is_8px_at_480p() -> None:
    gt = np.zeros((480, 854), bool)
    gt[100:300, 200:600] = True
    assert f_boundary(gt, np.roll(gt, 8, axis=0)) == 1.0
    assert f_boundary(gt, np.roll(gt, 9, axis=0)) < 1.0


def _sequence(folder: Path, masks: list[np.ndarray], binary: bool = False) -> Path:
    folder.mkdir(parents=True)
    for i, m in enumerate(masks):
        if binary:
            Image.fromarray((m > 0).astype(np.uint8) * 255).save(folder / f"{i:05d}.png")
        else:
            write_mask(folder / f"{i:05d}.png", m)
    return folder


def _masks(n: int, h: int = 24, w: int = 32) -> list[np.ndarray]:
    out = []
    for i in range(n):
        m = np.zeros((h, w), np.uint8)
        m[4:12, 2 + i: 10 + i] = 1
        m[14:20, 20 - i: 28 - i] = 2
        out.append(m)
    return out


def test_protocol_drops_first_and_last_frame(tmp_path: Path) -> None:
    gt = _masks(5)
    pred = [m.copy() for m in gt]
    pred[0][:] = 0
    pred[4][:] = 1
    gt_dir = _sequence(tmp_path / "gt" / "seq", gt, binary=True)
    pred_dir = _sequence(tmp_path / "pred" / "seq", pred)
    (score,) = evaluate_sequence(gt_dir, pred_dir)
    assert (score.sequence, score.object_id, score.frames) == ("seq", 1, 3)
    assert score.j_mean == 1.0 and score.f_mean == 1.0

    write_mask(pred_dir / "00005.png", gt[0])  # QA pass 12: predictions of a longer sequence went unremarked
    with pytest.warns(UserWarning, match=r"1 predictions in .* have no ground-truth mask and are not scored "
                                         r"\(first: 00005.png\)"):
        evaluate_sequence(gt_dir, pred_dir)
    (pred_dir / "00002.png").unlink()
    with pytest.raises(InputError, match="00002.png"):
        evaluate_sequence(gt_dir, pred_dir)
    (pred_dir / "00002.jpg").write_bytes(b"jpeg")  # QA pass 69: a JPEG prediction was called missing
    with pytest.raises(InputError, match="predictions are read as PNG, and 00002.jpg is not one"):
        evaluate_sequence(gt_dir, pred_dir)
    (pred_dir / "00002.jpg").unlink()
    (pred_dir / "00002.png").symlink_to(tmp_path / "gone.png")  # QA pass 27: "No such file or directory"
    with pytest.raises(InputError, match=r"predicted mask .*00002.png links to .*gone.png, which is not there"):
        evaluate_sequence(gt_dir, pred_dir)


def test_objects_and_void(tmp_path: Path) -> None:
    gt = _masks(4)
    pred = [m.copy() for m in gt]
    for m in pred[1:3]:
        m[m == 2] = 0  # object 2 lost after the first frame
    gt_dir = _sequence(tmp_path / "gt", gt)
    pred_dir = _sequence(tmp_path / "pred", pred)
    one, two = evaluate_sequence(gt_dir, pred_dir, objects=True)
    assert (one.object_id, one.j_mean, one.f_mean) == (1, 1.0, 1.0)
    assert (two.object_id, two.j_mean, two.f_mean) == (2, 0.0, 0.0)
    with pytest.warns(UserWarning, match="holds several objects, scored together as one foreground"):
        (single,) = evaluate_sequence(gt_dir, pred_dir)
    assert 0 < single.j_mean < 1

    # Void ground-truth pixels are background, as davis2017-evaluation scores them (QA pass 69: left out here,
    # scores came out up to 0.1 higher than the toolkit's): an object predicted there costs, background does not.
    gt_void = [m.copy() for m in gt]
    pred_wrong = [m.copy() for m in gt]
    for g, p in zip(gt_void[1:3], pred_wrong[1:3]):
        g[0:3, :] = 255
        p[0:3, :] = 1
    gt_dir_void = _sequence(tmp_path / "gt_void", gt_void)
    one, _ = evaluate_sequence(gt_dir_void, _sequence(tmp_path / "pred_wrong", pred_wrong), objects=True)
    area = (gt_void[1] == 1).sum()
    assert one.j_mean == pytest.approx(area / (area + (gt[1][0:3] != 1).sum()))
    with pytest.warns(UserWarning, match="marks 96 px void"):  # void predicted as 255: not object 1
        one, _ = evaluate_sequence(gt_dir_void, gt_dir_void, objects=True)
    assert one.j_mean == 1.0 and one.f_mean == 1.0


def test_a_frame_of_void_alone_and_labels_of_no_object(tmp_path: Path) -> None:
    """QA pass 21: a ground-truth frame where both objects are absent and a void band remains made the void
    object 1 (a perfect prediction scored J 0.67); prediction labels matching no object were ignored without a
    word (a 1..N export against ids 1, 2 with gaps would score 0)."""
    for folder in ("gt", "pred", "renumbered"):
        (tmp_path / folder).mkdir()
    for t in range(5):
        gt = np.zeros((100, 120), np.uint8)
        if t != 2:
            gt[20:50, 20:50], gt[60:90, 70:100] = 1, 3
        gt[0:10] = 255
        write_mask(tmp_path / "gt" / f"{t:05d}.png", gt)
        write_mask(tmp_path / "pred" / f"{t:05d}.png", np.where(gt == 255, 0, gt).astype(np.uint8))
        write_mask(tmp_path / "renumbered" / f"{t:05d}.png", np.where(gt == 3, 2, gt % 255).astype(np.uint8))
    rows = evaluate_sequence(tmp_path / "gt", tmp_path / "pred", objects=True)
    assert [(r.object_id, r.j_mean, r.f_mean) for r in rows] == [(1, 1.0, 1.0), (3, 1.0, 1.0)]
    with pytest.warns(UserWarning, match="hold labels 2, which no ground-truth object has \\(objects: 1, 3\\)"):
        evaluate_sequence(tmp_path / "gt", tmp_path / "renumbered", objects=True)


def test_evaluate_dirs_layouts_and_table(tmp_path: Path) -> None:
    for name in ("b-seq", "a-seq"):
        _sequence(tmp_path / "gt" / name, _masks(4), binary=True)
        _sequence(tmp_path / "pred" / name, _masks(4))
    _sequence(tmp_path / "pred" / "z-seq", _masks(4))  # predictions of a sequence with no ground truth
    with pytest.warns(UserWarning, match="1 prediction folder\\(s\\) in .* have no ground truth and are not "
                                         "scored: z-seq"):
        result = evaluate_dirs(tmp_path / "gt", tmp_path / "pred")
    assert [r.sequence for r in result.rows] == ["a-seq", "b-seq"]
    assert result.j_mean == 1.0 and result.f_mean == 1.0 and result.jf_mean == 1.0
    table = format_table(result)
    assert "a-seq" in table and table.splitlines()[-1].startswith("mean")
    single = evaluate_dirs(tmp_path / "gt" / "a-seq", tmp_path / "pred" / "a-seq")
    assert [r.sequence for r in single.rows] == ["a-seq"]

    _sequence(tmp_path / "gt" / "c-seq", _masks(4), binary=True)
    with pytest.raises(InputError, match="c-seq; give one sequence's ground truth and predictions to score it"):
        evaluate_dirs(tmp_path / "gt", tmp_path / "pred")  # QA pass 106: no word of what to do
    (tmp_path / "pred" / "a-seq" / "00002.png").unlink()
    with pytest.raises(InputError, match="00002.png is missing .*: the DAVIS protocol scores every frame but"):
        evaluate_dirs(tmp_path / "gt" / "a-seq", tmp_path / "pred" / "a-seq")
    with pytest.raises(InputError, match="at least 3"):
        evaluate_sequence(_sequence(tmp_path / "short", _masks(2)), tmp_path / "pred" / "a-seq")
    with pytest.raises(InputError, match="not found"):
        evaluate_dirs(tmp_path / "nowhere", tmp_path / "pred")


def _scores(csv_path: Path, key: str) -> dict[str, tuple[float, float]]:
    with open(csv_path, newline="") as f:
        return {row[key]: (float(row["J_mean"]), float(row["F_mean"])) for row in csv.DictReader(f)}


def test_reproduces_published_stm_davis2016_scores() -> None:
    """Acceptance check: the official STM DAVIS-2016 numbers, every sequence, to 4 decimals, in < 30 s."""
    gt_root = require_shared("data", "davis2016", "Annotations", "480p")
    results = require_shared("data", "stm-official-results")
    published = _scores(results / "davis2016-val-scores.csv", "sequence")
    start = time.perf_counter()
    result = evaluate_dirs(gt_root, results / "davis2016-val")
    seconds = time.perf_counter() - start
    assert sorted(r.sequence for r in result.rows) == sorted(published)
    for row in result.rows:
        j, f = published[row.sequence]
        assert abs(row.j_mean - j) < 5e-5, (row.sequence, row.j_mean, j)
        assert abs(row.f_mean - f) < 5e-5, (row.sequence, row.f_mean, f)
    assert seconds < 30, f"evaluating 692 frames took {seconds:.1f} s"


@pytest.mark.parametrize("sequence", ["blackswan", "camel", "cows", "libby"])
def test_per_object_mode_reproduces_davis2017_single_object_scores(sequence: str) -> None:
    """DAVIS-2017 GT is not shared; for single-object sequences the 2016 GT gives the published 3 decimals."""
    gt = require_shared("data", "davis2016", "Annotations", "480p", sequence)
    results = require_shared("data", "stm-official-results")
    published = _scores(results / "davis2017-val-scores.csv", "sequence_object")
    (row,) = evaluate_sequence(gt, results / "davis2017-val" / sequence, objects=True)
    j, f = published[f"{sequence}_1"]
    assert abs(row.j_mean - j) <= 5e-4 + 1e-9 and abs(row.f_mean - f) <= 5e-4 + 1e-9


def test_an_object_entering_later_is_scored_from_its_first_frame(tmp_path: Path) -> None:
    """Fifth CLI QA pass: `evaluate --objects` took the objects of frame 0 only, so a prediction that missed
    an object entering later scored a perfect 1.0."""
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    for t in range(6):
        labels = np.zeros((20, 30), np.uint8)
        labels[2:8, 2:8] = 1
        if t >= 3:
            labels[10:18, 10:20] = 2
        write_mask(gt / f"{t:05d}.png", labels)
        write_mask(pred / f"{t:05d}.png", np.where(labels == 1, 1, 0).astype(np.uint8))  # object 2 missed
    first, later = evaluate_sequence(gt, pred, objects=True)
    assert (first.object_id, first.j_mean, first.frames) == (1, 1.0, 4)
    assert (later.object_id, later.j_mean, later.frames) == (2, 0.0, 2)  # frames 3 and 4 (5 is the last)


def test_predictions_a_few_pixels_off_warn_once_against_the_ground_truth(tmp_path: Path) -> None:
    """Seventh CLI QA pass: 48 identical warnings, one per frame, saying "the frames are" where there are none."""
    for folder, size in (("gt", (20, 24)), ("pred", (22, 26))):
        (tmp_path / folder).mkdir()
        for t in range(5):
            mask = np.zeros(size, np.uint8)
            mask[5:12, 5:12] = 1
            write_mask(tmp_path / folder / f"{t:05d}.png", mask)
    with pytest.warns(UserWarning) as caught:
        evaluate_sequence(tmp_path / "gt", tmp_path / "pred")
    assert len(caught) == 1 and "3 predictions of gt were read with a warning" in str(caught[0].message)
    assert "is 26x22, the ground truth is 24x20" in str(caught[0].message)
