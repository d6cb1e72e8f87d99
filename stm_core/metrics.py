"""DAVIS region similarity J and boundary accuracy F, computed as the official DAVIS toolkits do.

The numbers must be comparable with published results, so the conventions follow the DAVIS-2016 and
`davis2017-evaluation` code exactly: J is the IoU (1 when both masks are empty); F matches the one-pixel
boundary maps of `seg2bmap` within a disk of radius ceil(0.008 * image diagonal); each sequence is scored
on frames 1..N-2 (the first frame is given, the last is dropped); 255 in a palette ground truth (void) is
scored as background, as `davis2017-evaluation` does (it zeroes 255 when it reads a mask, so its void masks
are always empty: QA pass 69 found scores here up to 0.1 higher where void pixels were left out).
"""

from __future__ import annotations

import glob
import os
import warnings
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError
from .io.frames import natural_key
from .io.masks import VOID_LABEL, check_mask_folder, read_mask, read_masks


def jaccard(gt: np.ndarray, pred: np.ndarray) -> float:
    """Region similarity: |gt & pred| / |gt | pred|; 1.0 when both are empty."""
    gt, pred = _binary_pair(gt, pred)
    union = np.count_nonzero(gt | pred)
    if union == 0:
        return 1.0
    return np.count_nonzero(gt & pred) / union


def f_boundary(gt: np.ndarray, pred: np.ndarray, bound_th: float = 0.008) -> float:
    """Boundary F-measure: boundary pixels of each mask matched within a tolerance disk of the other's.

    `bound_th` < 1 is a fraction of the image diagonal (DAVIS: 0.008, 8 px at 854x480), >= 1 is pixels.
    """
    gt, pred = _binary_pair(gt, pred)
    radius = int(bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(gt.shape)))
    gt_b = seg2bmap(gt)
    pred_b = seg2bmap(pred)
    n_gt = np.count_nonzero(gt_b)
    n_pred = np.count_nonzero(pred_b)
    if n_gt == 0 or n_pred == 0:
        # No boundary on one side: the toolkit scores precision/recall as 1/0, so F is 1 only if both are empty.
        return 1.0 if n_gt == n_pred else 0.0
    precision = np.count_nonzero(pred_b & _dilate(gt_b, radius)) / n_pred
    recall = np.count_nonzero(gt_b & _dilate(pred_b, radius)) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel boundary map of a binary mask, offset half a pixel towards the origin (Martin et al., 2003).

    A pixel is on the boundary when it differs from its east, south or south-east neighbour; the last row
    compares only east, the last column only south, and the bottom-right pixel is never a boundary.
    """
    seg = seg.astype(bool, copy=False)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    b[-1, :] = seg[-1, :] ^ east[-1, :]
    b[:, -1] = seg[:, -1] ^ south[:, -1]
    b[-1, -1] = False
    return b


@lru_cache(maxsize=8)
def _disk(radius: int) -> np.ndarray:
    """The pixels within `radius` of the centre, as skimage.morphology.disk builds them."""
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2 <= radius ** 2).astype(np.uint8)


def _dilate(bmap: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a disk, computed only around the boundary's bounding box (boundaries are sparse)."""
    rows = np.flatnonzero(bmap.any(axis=1))
    cols = np.flatnonzero(bmap.any(axis=0))
    y0, y1 = max(rows[0] - radius, 0), min(rows[-1] + radius + 1, bmap.shape[0])
    x0, x1 = max(cols[0] - radius, 0), min(cols[-1] + radius + 1, bmap.shape[1])
    out = np.zeros_like(bmap)
    crop = np.ascontiguousarray(bmap[y0:y1, x0:x1], dtype=np.uint8)
    out[y0:y1, x0:x1] = cv2.dilate(crop, _disk(radius)).astype(bool)
    return out


def _binary_pair(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gt = np.asarray(gt).astype(bool, copy=False)
    pred = np.asarray(pred).astype(bool, copy=False)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in size")
    return gt, pred


@dataclass(frozen=True)
class ObjectScore:
    """Mean J and F of one object of one sequence over the scored frames."""

    sequence: str
    object_id: int
    j_mean: float
    f_mean: float
    frames: int

    @property
    def jf_mean(self) -> float:
        return (self.j_mean + self.f_mean) / 2


@dataclass(frozen=True)
class EvalResult:
    """Per-object rows and their means (DAVIS averages over objects; in DAVIS-2016 one object = one sequence)."""

    rows: list[ObjectScore]

    @property
    def j_mean(self) -> float:
        return float(np.mean([r.j_mean for r in self.rows]))

    @property
    def f_mean(self) -> float:
        return float(np.mean([r.f_mean for r in self.rows]))

    @property
    def jf_mean(self) -> float:
        return (self.j_mean + self.f_mean) / 2


def _pngs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")),
                  key=lambda p: natural_key(p.name))


def evaluate_sequence(gt_dir: str | Path, pred_dir: str | Path, objects: bool = False) -> list[ObjectScore]:
    """Score the predicted masks of one sequence against its ground truth on frames 1..N-2.

    objects=False (DAVIS-2016): any non-zero pixel is the one object, in the ground truth (0/255) and in the
    prediction. objects=True (DAVIS-2017): each label of the ground truth is an object, matched with the same
    label of the prediction, and scored from the first frame it appears on (for the DAVIS-2017 sequences,
    where every object is in the first frame, that is the official protocol). Void (255) ground-truth pixels
    are background in both.
    """
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    check_mask_folder(gt_dir, "ground-truth masks")
    check_mask_folder(pred_dir, "predicted masks")
    gt_files = _pngs(gt_dir)
    for files, what in ((gt_files, "ground-truth mask"), (_pngs(pred_dir), "predicted mask")):
        broken = next((p for p in files if p.is_symlink() and not p.exists()), None)
        if broken is not None:  # QA pass 27: "cannot read mask …: No such file or directory", of a file listed
            raise InputError(f"{what} {broken} links to {os.readlink(broken)}, which is not there: restore it or "
                             "remove the link")
    if len(gt_files) < 3:
        raise InputError(f"{gt_dir} has {len(gt_files)} ground-truth masks; scoring drops the first and last "
                         f"frame, so it needs at least 3")
    # together: a frame of void alone is no object (QA pass 21)
    truth = read_masks(dict(enumerate(gt_files)), keep_void=True)
    first_seen: dict[int, int] = {1: 0}  # object -> first ground-truth frame showing it
    if objects:
        first_seen = {}
        for t in range(len(gt_files) - 1):  # an object first seen on the last frame is never scored
            for v in sorted(truth.objects(t)):
                first_seen.setdefault(v, t)
        first_seen = {obj: t for obj, t in sorted(first_seen.items()) if obj not in (0, VOID_LABEL)}
        if not first_seen:
            raise InputError(f"the ground-truth masks of {gt_dir} show no object")
    ids = list(first_seen)
    j = np.full((len(ids), len(gt_files) - 2), np.nan)
    f = np.full_like(j, np.nan)
    noted: list[str] = []  # what reading the predictions warned of (resized, void read as background)
    strangers: set[int] = set()  # predicted labels no ground-truth object has
    several = False  # ground truth of several objects scored as one foreground (QA pass 18: no hint was given)
    for t, gt_path in enumerate(gt_files[1:-1], start=1):
        pred_path = pred_dir / gt_path.name
        if not pred_path.is_file():
            other = next((p for p in sorted(pred_dir.glob(f"{glob.escape(pred_path.stem)}.*")) if p.is_file()), None)
            if other is not None:  # QA pass 69: JPEG predictions were called missing
                raise InputError(f"predictions are read as PNG, and {other.name} is not one: save the predictions "
                                 f"as PNG (a JPEG changes labels at object edges)")
            raise InputError(f"prediction {pred_path} is missing (ground truth has {gt_path.name}): the DAVIS "
                             "protocol scores every frame but the first and last, so propagate the whole video, "
                             "with the masks named as the ground truth's")
        gt = truth[t]  # a fresh array
        gt[gt == VOID_LABEL] = 0
        several = several or (not objects and gt.max() > 1 and len(np.unique(gt)) > 2)
        with warnings.catch_warnings(record=True) as caught:  # one line per sequence, not one per frame
            warnings.simplefilter("always")
            pred = read_mask(pred_path, expected_size=gt.shape, size_of="the ground truth is")
        noted += [str(w.message) for w in caught]
        if objects:
            strangers.update(int(v) for v in np.unique(pred) if v and v not in first_seen)
        for k, obj in enumerate(ids):
            if t < first_seen[obj]:
                continue
            gt_obj, pred_obj = (gt == obj, pred == obj) if objects else (gt != 0, pred != 0)
            j[k, t - 1] = jaccard(gt_obj, pred_obj)
            f[k, t - 1] = f_boundary(gt_obj, pred_obj)
    if noted:
        warnings.warn(f"{len(noted)} predictions of {gt_dir.name} were read with a warning (first: {noted[0]})",
                      stacklevel=2)
    if strangers:  # QA pass 21: a prediction numbered 1..N against ids 1, 3, 7 scored 0 without a word
        warnings.warn(f"the predictions of {gt_dir.name} hold labels {', '.join(map(str, sorted(strangers)))}, which "
                      f"no ground-truth object has (objects: {', '.join(map(str, ids))}): not scored; are they "
                      "numbered otherwise?", stacklevel=2)
    if several:
        warnings.warn(f"the ground truth of {gt_dir.name} holds several objects, scored together as one foreground "
                      "(DAVIS-2016); score each object with --objects (DAVIS-2017)", stacklevel=2)
    unmatched = sorted({p.name for p in _pngs(pred_dir)} - {p.name for p in gt_files}, key=natural_key)
    if unmatched:  # QA pass 12: another sequence's 90 predictions were scored against 50 masks without a word
        warnings.warn(f"{len(unmatched)} predictions in {pred_dir} have no ground-truth mask and are not scored "
                      f"(first: {unmatched[0]}); are they of another sequence?", stacklevel=2)
    scored = (~np.isnan(j)).sum(1)
    return [ObjectScore(gt_dir.name, obj, float(np.nanmean(j[k])), float(np.nanmean(f[k])), int(scored[k]))
            for k, obj in enumerate(ids)]


def evaluate_dirs(gt_root: str | Path, pred_root: str | Path, objects: bool = False, name: str | None = None
                  ) -> EvalResult:
    """Score one sequence (a folder of PNGs; `name` names it, else its folder) or many (a folder of such
    folders, matched by name)."""
    gt_root, pred_root = Path(gt_root), Path(pred_root)
    check_mask_folder(gt_root, "ground-truth masks")
    check_mask_folder(pred_root, "predicted masks")
    if _pngs(gt_root):
        if not _pngs(pred_root) and any(d.is_dir() and _pngs(d) for d in pred_root.iterdir()):
            own = pred_root / gt_root.name  # QA pass 25: "prediction .../00001.png is missing" gave no hint
            raise InputError(f"{gt_root} is one sequence's masks, but {pred_root} holds folders of sequences: give "
                             + (f"{own}" if own.is_dir() else "the folder of this sequence's predictions"))
        rows = evaluate_sequence(gt_root, pred_root, objects)
        return EvalResult([replace(r, sequence=name) for r in rows] if name else rows)
    if name:  # QA pass 57: one sequence's scores in `gt/` folders were all named "gt"; `name` is for those
        raise InputError(f"{gt_root} holds folders of sequences, named after them: give one sequence's folder "
                         "to name it")
    sequences = sorted((d for d in gt_root.iterdir() if d.is_dir() and _pngs(d)), key=lambda d: natural_key(d.name))
    if not sequences:
        raise InputError(f"no PNG masks in {gt_root} or its subfolders")
    missing = [d.name for d in sequences if not (pred_root / d.name).is_dir()]
    if missing and _pngs(pred_root):  # QA pass 27: "has no predictions for 30 sequence(s)" gave no hint
        own = gt_root / pred_root.name
        raise InputError(f"{gt_root} holds folders of sequences, but {pred_root} is one sequence's masks: give "
                         + (f"{own}" if own.is_dir() else "the folder of that sequence's ground truth"))
    if missing:
        raise InputError(f"{pred_root} has no predictions for {len(missing)} sequence(s): {', '.join(missing)}; "
                         "give one sequence's ground truth and predictions to score it alone")
    extra = sorted((d.name for d in pred_root.iterdir() if d.is_dir() and _pngs(d)
                    and not (gt_root / d.name).is_dir()), key=natural_key)
    if extra:  # QA pass 21: left out without a word (within a sequence, unmatched masks are named)
        warnings.warn(f"{len(extra)} prediction folder(s) in {pred_root} have no ground truth and are not scored: "
                      f"{', '.join(extra)}", stacklevel=2)
    rows: list[ObjectScore] = []
    for d in sequences:
        rows.extend(evaluate_sequence(d, pred_root / d.name, objects))
    return EvalResult(rows)


def format_table(result: EvalResult) -> str:
    """A plain-text table: one row per object, then the means."""
    width = max([len("sequence"), len("mean")] + [len(r.sequence) for r in result.rows])
    lines = [f"{'sequence':<{width}}  {'object':>6}  {'J-mean':>7}  {'F-mean':>7}  {'J&F':>7}"]
    for r in result.rows:
        lines.append(f"{r.sequence:<{width}}  {r.object_id:>6}  {r.j_mean:7.4f}  {r.f_mean:7.4f}  {r.jf_mean:7.4f}")
    lines.append(f"{'mean':<{width}}  {'':>6}  {result.j_mean:7.4f}  {result.f_mean:7.4f}  {result.jf_mean:7.4f}")
    return "\n".join(lines)
