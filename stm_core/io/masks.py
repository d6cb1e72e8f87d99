"""Mask files: DAVIS-style palette PNGs in and out, plus the other formats people bring.

Label maps are uint8 (H, W) arrays, 0 = background, 1..254 = objects. We write palette PNGs with the DAVIS
palette (what DAVIS, YouTube-VOS and most VOS tools read) and accept palette, grayscale, 16-bit and RGB
masks, since users export masks from many tools. Every write is atomic so a crash never leaves half a mask.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from .atomic import atomic_path
from .frames import image_files, upright
from .packed_masks import PackedMasks, labels_present

VOID_LABEL = 255
"""DAVIS marks 'void' (unlabelled, ignored by the metrics) pixels with palette index 255."""


def _davis_palette() -> np.ndarray:
    """The PASCAL VOC / DAVIS colormap: the bits of each label are spread over R, G and B from the top bit."""
    labels = np.arange(256)
    palette = np.zeros((256, 3), dtype=np.uint8)
    for shift in range(8):
        for channel in range(3):
            bit = (labels >> (3 * shift + channel)) & 1
            palette[:, channel] |= (bit << (7 - shift)).astype(np.uint8)
    return palette


DAVIS_PALETTE: np.ndarray = _davis_palette()
DAVIS_PALETTE.setflags(write=False)

def _codes(rgb: np.ndarray) -> np.ndarray:
    """One int per colour of RGB values [..., 3]: 0xRRGGBB."""
    return rgb.astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)


_PALETTE_CODES = _codes(DAVIS_PALETTE).tolist()
_LABEL_OF_COLOUR = {code: label for label, code in enumerate(_PALETTE_CODES)}


SIZE_TOLERANCE = 4
"""Pixels per side a mask may be off the expected size and still be resized (nearest) with a warning."""


def read_mask(path: str | Path, expected_size: tuple[int, int] | None = None, tolerance: int = SIZE_TOLERANCE, *,
              keep_void: bool = False, size_of: str = "the frames are", probability: bool = False) -> np.ndarray:
    """Read a mask file as a uint8 label map (H, W).

    Palette PNGs give their indices (one holding only 0 and 255 is a binary mask: one object); grayscale masks
    holding only 0 and one full-scale value (255, 65535, or 1) are one object, and so are binary masks whose
    edges were softened (resized, anti-aliased, JPEG; thresholded with a warning); other grayscale values up
    to 254 are labels; RGB(A) masks map through the DAVIS palette. Void (255) becomes background unless `keep_void`.
    A mask off the `expected_size` (H, W) by at most `tolerance` pixels per side is resized (nearest) with a
    warning; a larger mismatch is an error. `size_of` says whose size that is in the messages. `probability`:
    the file is an 8-bit probability map (255 = certain), read as one object where p >= 0.5.
    """
    labels, _, voided = _read_mask(Path(path), expected_size, tolerance, keep_void, size_of, probability)
    if voided:
        warnings.warn(f"mask {path} marks {voided} px void (255, DAVIS's \"not known\"): read as background",
                      stacklevel=2)
    return labels


def read_masks(paths: Mapping[int, Path], expected_size: tuple[int, int] | None = None, *, keep_void: bool = False,
               size_of: str = "the frames are", probability: bool = False,
               progress: Callable[[int, int], None] | None = None) -> PackedMasks:
    """`read_mask` of each of one sequence's masks, {key: path} -> the label maps, packed (a long video's masks
    fit in memory), with `progress(done, total)` after each. Where some are palette masks with labels
    (DAVIS-2017), a palette mask of 0 and 255 alone is a frame where every object is absent and void remains,
    not a binary mask of one object (QA pass 21: the void became object 1, and a perfect prediction scored J
    0.67)."""
    masks = PackedMasks()
    binary: list[int] = []
    labelled = False
    voided: set[int] = set()  # masks whose void pixels became background
    for done, (key, path) in enumerate(sorted(paths.items()), 1):
        masks[key], kind, void = _read_mask(Path(path), expected_size, SIZE_TOLERANCE, keep_void, size_of,
                                            probability)
        binary += [key] if kind == _BINARY_PALETTE else []
        labelled = labelled or kind == _LABELLED_PALETTE
        voided |= {key} if void else set()
        if progress is not None:
            progress(done, len(paths))
    for key in binary if labelled else ():
        labels = masks[key]
        voided |= {key} if not keep_void and (labels == 1).any() else set()
        labels[labels == 1] = VOID_LABEL if keep_void else 0
        masks[key] = labels
    if voided:  # QA pass 30: a mask frame came back without its void pixels, and nothing said so
        names = [Path(paths[k]).name for k in sorted(voided)]
        warnings.warn(f"{len(names)} mask{'s' if len(names) > 1 else ''} ({', '.join(names[:3])}"
                      f"{', …' if len(names) > 3 else ''}) mark pixels void (255, DAVIS's \"not known\"): read as "
                      "background", stacklevel=2)
    return masks


_BINARY_PALETTE, _LABELLED_PALETTE = "palette of 0 and 255", "palette with labels"
"""What `_labels_of` saw in a palette mask: 0 and 255 alone (read as one object), or labels besides them."""


def _read_mask(path: Path, expected_size: tuple[int, int] | None, tolerance: int, keep_void: bool, size_of: str,
               probability: bool) -> tuple[np.ndarray, str | None, int]:
    """`read_mask`, the kind of palette mask it was (`_BINARY_PALETTE`, `_LABELLED_PALETTE`, else None) and how
    many void pixels became background (without `keep_void`)."""
    try:
        with Image.open(path) as opened:
            opened.load()
            im = upright(opened)  # turned as its frames are (QA pass 46: a phone editor's JPEG mask was not)
            if probability:
                labels, kind = (np.asarray(im.convert("L")) >= 128).astype(np.uint8), None
            else:
                labels, kind = _labels_of(im, path)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise InputError.unreadable("mask", path, e) from None
    voided = 0
    if not keep_void:
        void = labels == VOID_LABEL
        voided = int(np.count_nonzero(void))
        labels[void] = 0
    if expected_size is not None and labels.shape != tuple(expected_size):
        labels = _fit_size(labels, tuple(expected_size), tolerance, path, size_of)
    return labels, kind, voided


def _labels_of(im: Image.Image, path: Path) -> tuple[np.ndarray, str | None]:
    if im.mode == "P":
        labels = np.array(im, dtype=np.uint8)
        # a 0/255 binary mask saved with a palette: 255 is its object, not a mask of nothing but DAVIS void
        # (seventh CLI QA pass: such predictions scored J 0 and such annotations "contain no object")
        present = np.array(sorted(labels_present(labels)))
        if (relabel := _labels_by_colour(im, present, path)) is not None:
            return relabel[labels], None
        flat = im.getpalette() or []
        if len(flat) >= 3 * int(present[-1]) + 3 and all(flat[3 * i:3 * i + 3] == [i] * 3 for i in present):
            return _grey_labels(labels, path), None  # a grey image saved indexed (QA pass 49: soft edges as objects)
        if present.tolist() in ([0, VOID_LABEL], [VOID_LABEL]):
            return (labels != 0).astype(np.uint8), _BINARY_PALETTE
        return labels, _LABELLED_PALETTE if (present[(present != 0) & (present != VOID_LABEL)]).size else None
    if im.mode in ("LA", "RGBA") and (cutout := _alpha_as_mask(im)) is not None:
        return cutout, None
    if im.mode == "1":
        return np.array(im, dtype=np.uint8), None
    if im.mode in ("L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N"):
        grey = np.asarray(im)
        return _grey_labels(grey[..., 0] if grey.ndim == 3 else grey, path), None
    if im.mode in ("RGB", "RGBA"):
        return _colour_labels(np.asarray(im), path), None
    raise InputError(f"mask {path} has unsupported image mode {im.mode}; save it as a palette or grayscale PNG")


def _alpha_as_mask(im: Image.Image) -> np.ndarray | None:
    """A cutout's transparency as its one object: a mask saved as transparency over one colour, or a photo cut
    out (SAM, rembg, remove.bg) whose colours are no mask's (QA pass 49: the one read as the whole frame, the
    other refused for its colours). None where the opaque colours are the mask (DAVIS colours, or greys that
    vary) or where the transparency marks nothing (all opaque, or all transparent)."""
    alpha = np.asarray(im.getchannel("A"))
    opaque = alpha >= 128
    if opaque.all() or not opaque.any():
        return None
    colours = np.asarray(im.convert("RGB"))[opaque]
    codes = np.unique(_codes(colours))
    if len(codes) == 1:  # one DAVIS colour, not black, is its label's
        return None if _LABEL_OF_COLOUR.get(int(codes[0]), 0) not in (0, VOID_LABEL) else opaque.astype(np.uint8)
    if im.mode == "LA" or len(codes) <= FLAT_COLOURS:  # a label map, or objects in colours of their own (QA
        return None  # pass 51: two such read as one): the colours are the mask, transparency only clears pixels
    return opaque.astype(np.uint8)


FLAT_COLOURS = 64
"""The most opaque colours an RGBA mask of objects in colours has, with blends at soft edges; a photo cut out
has thousands, and its transparency is its mask."""


def _labels_by_colour(im: Image.Image, present: np.ndarray, path: Path) -> np.ndarray | None:
    """For an indexed mask whose palette says its indices are no labels, each index's label (a lookup table):
    an image editor's palette, in the order it met the colours, with black (the background) at another index
    than 0, or DAVIS colours at other indices than their own (QA pass 46: a disc at index 0 on black at index 1
    was read inverted, the background tracked as the object). DAVIS colours give their labels, else black is
    the background and the other colours are objects 1, 2... in palette order. None where the indices are the
    labels: DAVIS and YouTube-VOS masks, and label maps with a palette of their own."""
    flat = im.getpalette() or []
    colours = {int(i): tuple(flat[3 * i:3 * i + 3]) for i in present if len(flat) >= 3 * i + 3}
    if len(colours) < len(present) or len(set(colours.values())) < len(colours):
        return None  # indices past the palette, or two of one colour: only the indices tell them apart
    davis = {i: _LABEL_OF_COLOUR.get(int(_codes(np.array(c)))) for i, c in colours.items()}
    all_davis = all(label is not None for label in davis.values())
    if not (any(c == (0, 0, 0) for i, c in colours.items() if i != 0)
            or all_davis and any(label != i for i, label in davis.items())):
        return None
    relabel = np.zeros(256, np.uint8)
    if all_davis:
        for i, label in davis.items():
            relabel[i] = label
        return relabel
    objects = [i for i, c in colours.items() if c != (0, 0, 0)]
    relabel[objects] = np.arange(1, len(objects) + 1)
    if len(objects) > 1:
        warnings.warn(f"mask {path} is an indexed image whose palette has black (the background) at index "
                      f"{next(i for i, c in colours.items() if c == (0, 0, 0))}, not 0: read by colour, the other "
                      f"colours as objects 1-{len(objects)} in palette order", stacklevel=6)
    return relabel


def _grey_labels(grey: np.ndarray, path: Path) -> np.ndarray:
    """Binary masks (0 and one full-scale value) become object 1, and so do binary masks whose edges were
    softened or blurred by JPEG (a warning says so); otherwise the values are the labels."""
    if grey.dtype == np.uint8:  # a histogram is several times faster than np.unique here
        values = np.array(sorted(labels_present(grey)))
    elif grey.dtype == np.uint16:
        values = np.flatnonzero(np.bincount(grey.ravel(), minlength=1))
    else:
        values = np.unique(grey)
    nonzero = values[values != 0]
    if len(nonzero) == 1 and (nonzero[0] == 1 or nonzero[0] >= 255):
        return (grey != 0).astype(np.uint8)
    beyond_labels = bool(len(nonzero)) and nonzero[-1] > 254  # 255 beside other values: no label map either
    threshold = _soft_binary_threshold(grey, nonzero, 0.5 if beyond_labels else 0.75) \
        if len(nonzero) >= SOFT_MIN_LEVELS or beyond_labels else None
    if threshold is not None:
        warnings.warn(f"mask {path} has {len(nonzero)} grey levels, most of them only along edges: a binary mask "
                      f"with soft or JPEG edges, read as one object where grey >= {threshold}", stacklevel=5)
        return (grey >= threshold).astype(np.uint8)
    if len(nonzero) and (nonzero[-1] > 254 or nonzero[0] < 0):
        # 255 beside labels may be DAVIS void or an object of a binary mask: guessing misread either (QA passes
        # 94-99), so it is said how to make it plain
        void = f"; if {VOID_LABEL} marks void (DAVIS's \"not known\"), save the mask as a palette PNG, which keeps " \
            f"index {VOID_LABEL} for it, or make those pixels 0" if nonzero[-1] == VOID_LABEL and len(nonzero) > 1 \
            else ""
        raise InputError(f"mask {path} has grey values {', '.join(str(v) for v in nonzero[:8])}: neither a "
                         f"0/255 binary mask nor labels 1..254{void}")
    if _smooth_map(grey, nonzero):  # session 15 and 17: a faint map peaking at 100 became 100 objects
        raise InputError(f"mask {path} changes smoothly through grey levels {nonzero[0]}..{nonzero[-1]}: a "
                         "probability map, "
                         "not labels; give label maps (or one object's 0/255 masks), or the app's own soft export "
                         "folder")
    return grey.astype(np.uint8)


SMOOTH_MIN_LEVELS = 16
"""A grey mask with at least this many levels, three in four of those from 1 up to its highest present, that
changes between neighbours by small steps (a sixteenth of its range, at least 2), across and down alike, is a
probability map: label maps of VOS datasets hold a handful of objects with sharp borders, and many touching
consecutive ids come as stripes or bands (QA passes 19-20), changing one way."""
SMOOTH_MIN_BAND = 8
"""Levels enough where they start above 1: a map confined to a narrow band, such as 70..83 without background
(QA pass 32: read as 14 objects covering every pixel) or inside an object on black (QA pass 36: 14 rings), is no
label map either."""


def _smooth_map(grey: np.ndarray, levels: np.ndarray) -> bool:
    if not len(levels) or min(grey.shape) < 2:
        return False
    span = int(levels[-1]) - int(levels[0]) + 1
    if len(levels) < (SMOOTH_MIN_LEVELS if levels[0] <= 1 else SMOOTH_MIN_BAND) or len(levels) < 0.75 * span:
        return False
    values, small = grey.astype(np.int32), max(2, span // 16)  # a small step for this range
    band = levels[0] > 1  # inside a band's object: its edge to the background is no step of the map
    for a, b in ((values[:-1], values[1:]), (values[:, :-1], values[:, 1:])):  # down, across
        steps = np.abs(a - b)[((a != 0) & (b != 0)) if band else ((a != 0) | (b != 0))]
        changes = steps[steps > 0]
        if not changes.size or changes.size < 0.02 * steps.size or (changes <= small).mean() < 0.9:
            return False
    return True


SOFT_MIN_LEVELS = 3
"""A grey mask with fewer non-zero levels is taken as labels whatever its edges look like."""
SOFT_MIN_VALUE = 64
"""A soft binary mask's object is bright (255, 200, 128, 100 are usual); grey label maps count 1, 2, 3...
(QA pass 15: one of two discs and eight 2x3 px objects, labels 1-10, was read as one soft object)."""


def _soft_binary_threshold(grey: np.ndarray, levels: np.ndarray, edge_share: float) -> int | None:
    """The threshold between background and object if `grey` is a binary mask whose edges were anti-aliased,
    resized smoothly or blurred by JPEG, else None. Such a mask has many grey levels (QA pass 12: a resized
    0/200 mask held 200, read as 200 objects), and most of them occur only where values change: no pixel of
    theirs has four neighbours of its own value. Every object of a real label map has such inner pixels.
    At least `edge_share` of the levels must be edge-only (less is asked where it cannot be labels anyway)."""
    if grey.dtype not in (np.uint8, np.uint16) or min(grey.shape) < 3:
        return None
    inner = grey[1:-1, 1:-1]
    same = (inner == grey[:-2, 1:-1]) & (inner == grey[2:, 1:-1]) & (inner == grey[1:-1, :-2]) & \
        (inner == grey[1:-1, 2:])
    interior = np.bincount(inner[same].ravel(), minlength=int(levels[-1]) + 1)
    edge_only = int((interior[levels] == 0).sum())
    if edge_only < edge_share * len(levels):
        return None
    # the object's value is the median above Otsu's split, since JPEG noise makes neither it nor the background
    # one value (QA pass 13: at quality 70 the inside spans 237-255, and background noise of level 1 had the
    # most inner pixels); half of it keeps a softened edge where it was
    scale = 1 if grey.dtype == np.uint8 else 257
    split, _ = cv2.threshold((grey // scale).astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    above = grey[grey > int(split) * scale]
    main = int(np.median(above)) if above.size else 0
    body = inner[same & (inner > int(split) * scale)]  # the insides above the split: one plateau, or two objects
    if body.size:
        second, _ = cv2.threshold((body // scale).astype(np.uint8).reshape(-1, 1), 0, 255,
                                  cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        low, high = body[body <= int(second) * scale], body[body > int(second) * scale]
        if min(low.size, high.size) >= 0.1 * body.size and high.mean() - low.mean() > 0.25 * main:
            return None  # QA pass 49: objects at 128 and 255 with soft edges were read as one
    return (main + 1) // 2 if main >= SOFT_MIN_VALUE * scale else None


def _colour_labels(rgb: np.ndarray, path: Path) -> np.ndarray:
    """RGB masks: DAVIS palette colours -> labels; a grey-only image falls back to the grayscale rules."""
    colour = rgb[..., :3]
    if rgb.shape[2] == 4:  # fully transparent pixels are background whatever their colour
        colour = np.where(rgb[..., 3:4] == 0, 0, colour).astype(np.uint8)
    codes = _codes(colour)
    uniq, inverse = np.unique(codes, return_inverse=True)
    labels_of_uniq = [_LABEL_OF_COLOUR.get(int(c)) for c in uniq]
    if all(lab is not None for lab in labels_of_uniq):
        return np.asarray(labels_of_uniq, dtype=np.uint8)[inverse].reshape(codes.shape)
    if (colour[..., 0] == colour[..., 1]).all() and (colour[..., 1] == colour[..., 2]).all():
        return _grey_labels(colour[..., 0], path)
    if (near := _nearest_palette_labels(uniq, inverse.reshape(codes.shape), path)) is not None:
        return near[inverse].reshape(codes.shape)
    odd = next(int(c) for c, lab in zip(uniq, labels_of_uniq) if lab is None)
    raise InputError(f"mask {path} has colour ({odd >> 16}, {(odd >> 8) & 255}, {odd & 255}) that is not in "
                     f"the DAVIS palette; save it as a palette or grayscale PNG")


NEAR_COLOUR = 24
"""How far (Euclidean, in RGB levels) JPEG noise or a soft edge takes a mask's colours off the DAVIS palette's."""


def _nearest_palette_labels(codes: np.ndarray, pixels: np.ndarray, path: Path) -> np.ndarray | None:
    """For an RGB mask in DAVIS colours saved as JPEG or WebP, or with anti-aliased edges (QA pass 49: refused,
    naming a colour of JPEG noise), the label of each of its colours (`codes`; `pixels` gives each pixel's): the
    nearest of the palette colours that whole areas lie near, not only edges (a blend of red and black is
    nearest another palette colour). None where most pixels lie near no palette colour (a photo, colours of
    one's own)."""
    colours = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=1).astype(np.int32)
    palette = DAVIS_PALETTE.astype(np.int32)
    nearest = np.empty(len(colours), np.int64)
    for start in range(0, len(colours), 4096):  # a JPEG's tens of thousands of colours, a slice at a time
        squared = ((colours[start:start + 4096, None, :] - palette[None]) ** 2).sum(-1)
        nearest[start:start + 4096] = np.where(squared.min(1) <= NEAR_COLOUR ** 2, squared.argmin(1), -1)
    near = nearest[pixels]
    if (near >= 0).mean() < 0.9 or min(near.shape) < 3:
        return None
    inner = near[1:-1, 1:-1]
    whole = (inner == near[:-2, 1:-1]) & (inner == near[2:, 1:-1]) & (inner == near[1:-1, :-2]) & \
        (inner == near[1:-1, 2:])
    if (whole & (inner < 0)).sum() >= max(16, 0.002 * inner.size):  # an area of a colour far from them all
        return None  # QA pass 51: a pure red box (255, 0, 0) became background, or merged with a DAVIS red one
    found = np.flatnonzero(np.bincount(inner[whole & (inner >= 0)], minlength=len(DAVIS_PALETTE)) >= 4)
    if not found[found > 0].size:  # nothing but black: no object to snap to
        return None
    labels = found[((colours[:, None, :] - palette[found][None]) ** 2).sum(-1).argmin(1)].astype(np.uint8)
    warnings.warn(f"mask {path} has colours near the DAVIS palette's but off it (JPEG or soft edges): each pixel "
                  f"is read as the nearest of labels {', '.join(str(int(f)) for f in found)}", stacklevel=6)
    return labels


def _fit_size(labels: np.ndarray, size: tuple[int, int], tolerance: int, path: Path, size_of: str) -> np.ndarray:
    h, w = labels.shape
    eh, ew = size
    message = f"mask {path} is {w}x{h}, {size_of} {ew}x{eh}"
    if abs(h - eh) > tolerance or abs(w - ew) > tolerance:  # QA pass 28: the message gave no way forward
        scaled = abs(w * eh - h * ew) <= max(w, ew) * tolerance  # the same picture at another resolution
        turned = (h, w) == (ew, eh)  # QA pass 33: a portrait phone video's mask made on the picture as stored
        raise InputError(message + (
            ": the same size turned a quarter. If the video is a phone's portrait video, it is stored sideways with "
            "a note to turn it, which this program follows as players do, and the mask was made on the picture as "
            "stored by a tool that ignores the note: turn the masks a quarter to match the frames as shown here"
            if turned else
            f": scale the masks to {ew}x{eh} with nearest-neighbour resampling (labels must stay whole numbers), "
            "e.g. in an image editor or with OpenCV's INTER_NEAREST" if scaled else
            ": are these the masks of another video?"))
    warnings.warn(f"{message}; resized it (nearest neighbour)", stacklevel=4)
    return cv2.resize(labels, (ew, eh), interpolation=cv2.INTER_NEAREST_EXACT)


def write_mask(path: str | Path, labels: np.ndarray) -> None:
    """Write a label map as a palette PNG with the DAVIS palette (atomically)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"a label map is 2-D, got shape {labels.shape}")
    if labels.dtype != np.uint8:
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise ValueError("labels must lie in 0..255")
        labels = labels.astype(np.uint8)
    im = Image.fromarray(np.ascontiguousarray(labels))
    im.putpalette(DAVIS_PALETTE.tobytes())  # turns the 'L' image into a 'P' one
    _save(im, path)


def write_binary_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write a boolean mask as a 0/255 grayscale PNG (what DAVIS-2016 and most tools expect for one object)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask is 2-D, got shape {mask.shape}")
    _save(Image.fromarray((mask != 0).astype(np.uint8) * 255), path)


def write_gray(path: str | Path, image: np.ndarray) -> None:
    """Write a uint8 (H, W) image such as a probability map (255 = certain) as a grayscale PNG."""
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 image, got {image.dtype} {image.shape}")
    _save(Image.fromarray(np.ascontiguousarray(image)), path)


def _save(im: Image.Image, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")


_TRAILING_NUMBER = re.compile(r"[0-9]+$")  # ASCII digits only: '²' is a digit to Python, not a frame number


def mask_digest(labels: np.ndarray) -> str:
    """Content digest of a label map: caches and results name the annotation they were made from by it."""
    return hashlib.blake2b(np.ascontiguousarray(labels, np.uint8).tobytes(), digest_size=16).hexdigest()


def read_mask_dir(folder: str | Path, frame_names: list[str], frame_size: tuple[int, int],
                  progress: Callable[[int, int], None] | None = None) -> PackedMasks:
    """Read every image of `folder` (PNG, or JPEG and the other frame formats) as the mask of the frame it
    names: {frame index: label map}, packed, with `progress(done, total)` after each mask.

    '00005.png' belongs to the frame whose stem is '00005'. Otherwise an integer stem matches the frame whose
    name ends in the same number however it is padded ('00001.png' is frame '0001.jpg', or 'frame_0001.jpg'
    as ffmpeg names frames, counting from 1), and when no frame name ends in a number it is the frame index
    ('5.png' is the sixth frame). A mask that names no frame, or two, and two masks for one frame ('5.png'
    and '5.jpg') are errors, so typos and ambiguous names do not go unnoticed.
    """
    folder = Path(folder)
    check_mask_folder(folder)
    files = image_files(folder, "mask")  # any image format (QA pass 12: JPEG masks were skipped)
    if not files:
        inside = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
        raise InputError(f"no masks (png, jpg, bmp, tif, webp, gif) in {folder}" +
                         (f": it holds the folders {', '.join(inside[:6])}{' …' if len(inside) > 6 else ''}; "
                          "give the one with the masks" if inside else ""))
    index_of = {name: i for i, name in enumerate(frame_names)}
    numbered: dict[int, list[int]] = {}
    for i, name in enumerate(frame_names):
        if (number := _TRAILING_NUMBER.search(name)) is not None:
            numbered.setdefault(int(number.group()), []).append(i)
    owner: dict[int, Path] = {}
    for p in files:
        index = index_of.get(p.stem)
        if index is None and p.stem.isascii() and p.stem.isdecimal():
            if numbered:
                candidates = numbered.get(int(p.stem), [])
                if len(candidates) > 1:
                    raise InputError(f"mask {p} could be for frame {' or '.join(frame_names[i] for i in candidates)}:"
                                     f" name it exactly like one of them")
                index = candidates[0] if candidates else None
            elif int(p.stem) < len(frame_names):
                index = int(p.stem)
        if index is None:
            stems = {int(f.stem) for f in files if f.stem.isascii() and f.stem.isdecimal()}
            shifted = "; the masks count from 1 (as ffmpeg numbers frames) and the frames from 0: number the " \
                "masks from 0" if p.stem.isascii() and p.stem.isdecimal() and int(p.stem) == len(frame_names) \
                and stems and min(stems) == 1 else ""
            raise InputError(f"mask {p} names no frame (frames are {frame_names[0]}..{frame_names[-1]}){shifted}")
        if index in owner:
            raise InputError(f"masks {owner[index].name} and {p.name} in {folder} are both for frame "
                             f"{frame_names[index]}: take one of them out of the folder")
        owner[index] = p
    maker = soft_maps_of(folder)
    soft = maker is not None
    if soft:
        warnings.warn(f"{folder} holds one object's soft probability maps ({maker}): each is read as the object "
                      "where p >= 0.5", stacklevel=2)
    return read_masks(owner, frame_size, probability=soft, progress=progress)


def check_mask_folder(folder: Path, what: str = "masks") -> None:
    """An `InputError` unless `folder` is a folder (of `what`), naming a mask file given instead (QA passes 18 and
    21: a file was "not found")."""
    if folder.is_file():
        raise InputError(f"{folder} is a file, not a folder of {what}: give its folder")
    if not folder.is_dir():
        raise InputError(f"{what.removesuffix('s')} folder not found: {folder}")


SOFT_EXPORT_DIR, OBJECT_DIR_PREFIX = "soft", "object_"
"""Where the application's export writes one object's probability maps: soft/object_NNN/ (app/export.py)."""


def soft_maps_of(folder: Path) -> str | None:
    """Who wrote `folder` as one object's probability maps (8-bit, 255 = certain), by its place: this
    application's export (`soft/object_NNN` beside `objects.json`) or a Cutie workspace (`soft_masks/N` beside
    `masks/`); None for any other folder. Read as labels, every grey level became an object (QA pass 17); a
    rule from the grey values alone misread label maps of touching objects with consecutive ids (QA passes 19
    and 20), so the folder's place decides."""
    parent, workspace = folder.parent, folder.parent.parent
    if parent.name == SOFT_EXPORT_DIR and folder.name.startswith(OBJECT_DIR_PREFIX) \
            and (workspace / "objects.json").is_file():
        return "this program's export"
    if parent.name == "soft_masks" and folder.name.isdecimal() and (workspace / "masks").is_dir():
        return "a Cutie workspace"
    return None


def objects_listings(folder: Path) -> Iterator[Any]:
    """The parsed `objects.json` files that describe a mask folder's objects (as the application's export writes
    it: beside `masks/`, or in the folder itself), nearest first; unreadable ones are skipped."""
    for path in (folder / "objects.json", folder.parent / "objects.json"):
        try:
            yield json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):  # RecursionError: nested too deep (QA pass 103)
            continue


def split_annotations(annotations: Mapping[int, np.ndarray], known_objects: Iterable[int] = ()
                      ) -> tuple[PackedMasks, PackedMasks]:
    """(complete, adding): a mask that shows none of the objects of the complete masks before it, nor of
    `known_objects` (the Cutie/XMem convention: masks for objects that enter mid-video, on one frame or
    several), adds its objects to what is propagated there; any other mask is the whole truth of its frame
    (a correction repeats an object it corrects). Without known objects the first mask is complete."""
    packed = annotations if isinstance(annotations, PackedMasks) else PackedMasks(annotations.items())
    complete: list[int] = []
    adding: list[int] = []
    seen = set(known_objects)
    for index in packed:
        ids = packed.objects(index)
        if seen and ids and not ids & seen:
            adding.append(index)
        else:
            complete.append(index)
            seen |= ids
    return packed.subset(complete), packed.subset(adding)


def add_objects(labels: np.ndarray | None, new: np.ndarray) -> np.ndarray:
    """`labels` (None: an empty frame) with the objects of mask `new` added: they take their pixels, and
    any pixels the same labels had elsewhere become background."""
    merged = np.zeros(new.shape, np.uint8) if labels is None else labels.copy()
    merged[np.isin(merged, np.unique(new[new > 0]))] = 0
    merged[new > 0] = new[new > 0]
    return merged
