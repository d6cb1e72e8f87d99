"""Procedural training clips: textured shapes moving over a textured, moving background.

With no pretrained weights and only seven real training videos, the network learns matching and
segmentation mostly from these. They are built to exercise what STM must learn: objects whose colour
alone does not identify them (distractors with the background's or another object's palette), objects
that occlude each other, move slowly or fast, rotate, change scale and deform, thin parts, a panning
and zooming camera, and lighting changes, blur and noise. Everything is NumPy/OpenCV on small images so
that a 3-frame 192x192 clip with three objects takes a few milliseconds on one core.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from stm_core.train.augment import (
    affine_matrix,
    field_from_grid,
    loguniform,
    photometric_clip,
    random_grid,
    to_chw,
    warp,
)
from stm_core.train.clip_sampler import Clip

__all__ = ["SyntheticClips", "random_palette", "random_texture", "random_shape"]

TEXTURE_FAMILIES = ("dead_leaves", "spectral", "pattern", "color_field", "mix")
_FAMILY_WEIGHTS = np.array([0.25, 0.3, 0.2, 0.13, 0.12])


# ----------------------------------------------------------------------------------------- palettes


def random_palette(rng: np.random.Generator, k: int | None = None) -> np.ndarray:
    """k RGB colours (float32 [k,3]) from an analogous, complementary or random hue scheme, with
    grey-ish and dark members, so textures range from muted to garish."""
    k = int(rng.integers(2, 6)) if k is None else k
    base = rng.uniform(0, 360)
    scheme = rng.integers(3)
    if scheme == 0:
        hues = base + rng.normal(0, 25, k)
    elif scheme == 1:
        hues = base + rng.choice([0.0, 180.0], k) + rng.normal(0, 15, k)
    else:
        hues = rng.uniform(0, 360, k)
    hsv = np.stack([hues % 360, rng.uniform(0, 1, k) ** 0.7, rng.uniform(0.15, 1, k)], axis=1)
    return cv2.cvtColor(hsv[None].astype(np.float32), cv2.COLOR_HSV2RGB)[0]


def _similar_palette(rng: np.random.Generator, palette: np.ndarray) -> np.ndarray:
    """A jittered copy: the colours of a distractor that looks like the background or another object."""
    jitter = rng.normal(0, rng.uniform(0.04, 0.15), palette.shape)
    return np.clip(palette + jitter, 0, 1).astype(np.float32)


def _palette_lut(rng: np.random.Generator, palette: np.ndarray) -> np.ndarray:
    """256-entry RGBA lookup table through the palette: smooth ramps or posterised bands."""
    k = len(palette)
    pos = np.sort(rng.uniform(0, 1, k))
    pos[0], pos[-1] = 0.0, 1.0
    x = np.linspace(0, 1, 256)
    lut = np.ones((256, 1, 4), np.float32)
    if rng.random() < 0.3:
        lut[:, 0, :3] = palette[np.clip(np.searchsorted(pos, x), 0, k - 1)]
    else:
        for c in range(3):
            lut[:, 0, c] = np.interp(x, pos, palette[:, c])
    return lut


def _apply_lut(t: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map a [0,1] scalar field through an RGBA LUT (cv2.LUT needs matching channel counts)."""
    idx = (np.clip(t, 0, 1) * 255).astype(np.uint8)
    return cv2.LUT(cv2.merge([idx, idx, idx, idx]), lut)


# ----------------------------------------------------------------------------------------- textures


@lru_cache(maxsize=16)
def _frequencies(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]


def _spectral_noise(rng: np.random.Generator, h: int, w: int, exponent: float) -> np.ndarray:
    """Zero-mean, unit-variance 1/f^exponent noise (float32 [h,w]), sometimes anisotropic (grain,
    streaks). Synthesised at half resolution and upsampled: half the FFT cost, little visible loss."""
    hh, ww = max(8, h // 2), max(8, w // 2)
    fy, fx = _frequencies(hh, ww)
    a = rng.uniform(0, np.pi)
    stretch = loguniform(rng, 1, 6) if rng.random() < 0.3 else 1.0
    u = fx * np.cos(a) + fy * np.sin(a)
    v = (fy * np.cos(a) - fx * np.sin(a)) * stretch
    f = np.sqrt(u * u + v * v)
    f[0, 0] = 1.0
    amp = f ** -exponent
    amp[0, 0] = 0.0
    spec = amp * (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape))
    x = np.fft.irfft2(spec, s=(hh, ww)).astype(np.float32)
    x = (x - x.mean()) / (x.std() + 1e-8)
    return cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)


def _dead_leaves(rng: np.random.Generator, h: int, w: int, palette: np.ndarray) -> np.ndarray:
    """Occluding discs, ellipses and rotated rectangles with power-law sizes: scale-invariant edges
    like natural images, which teaches that an edge alone is not an object boundary."""
    img = np.ones((h, w, 4), np.float32)
    img[..., :3] = palette[rng.integers(len(palette))]
    n = int(rng.integers(30, 110))
    rmin, rmax = 2.0, rng.uniform(0.1, 0.4) * max(h, w)
    u = rng.uniform(0, 1, n)
    radii = (rmin ** -2 + u * (rmax ** -2 - rmin ** -2)) ** -0.5
    xs = rng.uniform(-0.1 * w, 1.1 * w, n)
    ys = rng.uniform(-0.1 * h, 1.1 * h, n)
    colors = np.clip(palette[rng.integers(len(palette), size=n)] + rng.normal(0, 0.06, (n, 3)), 0, 1)
    kinds = rng.integers(0, 3, n)
    angles = rng.uniform(0, 180, n)
    aspects = rng.uniform(0.3, 1.0, n)
    for x, y, r, c, kind, ang, asp in zip(xs, ys, radii, colors, kinds, angles, aspects):
        color = (float(c[0]), float(c[1]), float(c[2]), 1.0)
        center = (int(x), int(y))
        if kind == 0:
            cv2.circle(img, center, int(r), color, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.ellipse(img, center, (int(r), max(1, int(r * asp))), ang, 0, 360, color, -1, cv2.LINE_AA)
        else:
            box = cv2.boxPoints(((x, y), (2 * r, 2 * r * asp), ang))
            cv2.fillConvexPoly(img, np.round(box).astype(np.int32), color, cv2.LINE_AA)
    return img


def _spectral_texture(rng: np.random.Generator, h: int, w: int, palette: np.ndarray) -> np.ndarray:
    """Fractal noise coloured through a palette: clouds, marble, grass-like grain depending on exponent."""
    t = 0.5 + 0.22 * _spectral_noise(rng, h, w, rng.uniform(0.8, 2.6))
    return _apply_lut(t, _palette_lut(rng, palette))


@lru_cache(maxsize=16)
def _coords(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return x, y


def _pattern(rng: np.random.Generator, h: int, w: int, palette: np.ndarray) -> np.ndarray:
    """Man-made looking patterns: sine or square stripes, checkerboards, linear or radial gradients,
    sometimes bent by low-frequency noise."""
    x, y = _coords(h, w)
    a = rng.uniform(0, np.pi)
    u = x * np.cos(a) + y * np.sin(a)
    v = y * np.cos(a) - x * np.sin(a)
    if rng.random() < 0.4:
        bend = _spectral_noise(rng, h, w, 2.5) * rng.uniform(2, 12)
        u = u + bend
        v = v + bend
    period = loguniform(rng, 5, 60)
    kind = rng.integers(5)
    if kind == 0:
        t = 0.5 + 0.5 * np.sin(u * (2 * np.pi / period) + rng.uniform(0, 2 * np.pi))
    elif kind == 1:
        t = (np.floor(u / period) % 2).astype(np.float32)
    elif kind == 2:
        t = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    elif kind == 3:
        t = (u - u.min()) / (np.ptp(u) + 1e-6)
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
        t = 0.5 + 0.5 * np.cos(r * (2 * np.pi / period)) if rng.random() < 0.5 else r / r.max()
    return _apply_lut(t, _palette_lut(rng, palette))


def _color_field(rng: np.random.Generator, h: int, w: int, palette: np.ndarray) -> np.ndarray:
    """Flat colour or a smooth blend of a few palette colours: the low-texture case where only shape
    and position can tell objects apart."""
    g = int(rng.integers(1, 5))
    grid = np.ones((g, g, 4), np.float32)
    grid[..., :3] = palette[rng.integers(len(palette), size=(g, g))]
    if g == 1:
        return np.broadcast_to(grid, (h, w, 4)).copy()
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)


_FAMILIES = {
    "dead_leaves": _dead_leaves,
    "spectral": _spectral_texture,
    "pattern": _pattern,
    "color_field": _color_field,
}


def random_texture(
    rng: np.random.Generator, h: int, w: int, palette: np.ndarray, family: str | None = None
) -> np.ndarray:
    """A float32 [h,w,4] texture (RGB in [0,1], channel 3 = 1) of the given or a random family.

    "mix" blends two other families through a thresholded noise mask (patchy materials). Half of the
    textures also get a low-frequency shading, like uneven lighting.
    """
    family = family or str(rng.choice(TEXTURE_FAMILIES, p=_FAMILY_WEIGHTS))
    if family == "mix":
        first, second = rng.choice(list(_FAMILIES), 2, replace=False)
        img = _FAMILIES[first](rng, h, w, palette)
        other = _FAMILIES[second](rng, h, w, _similar_palette(rng, palette)
                                  if rng.random() < 0.5 else random_palette(rng))
        sharp = loguniform(rng, 1, 20)
        m = 1 / (1 + np.exp(-sharp * _spectral_noise(rng, h, w, rng.uniform(1.5, 3))))
        img += (other - img) * m[..., None]
    else:
        img = _FAMILIES[family](rng, h, w, palette)
    if rng.random() < 0.5:
        shade = rng.standard_normal((3, 3)).astype(np.float32) * rng.uniform(0.05, 0.25)
        shade = 1 + cv2.resize(shade, (w, h), interpolation=cv2.INTER_CUBIC)
        img *= shade[..., None]
        np.clip(img, 0, 1, out=img)
        img[..., 3] = 1.0
    return img


# ------------------------------------------------------------------------------------------- shapes


@lru_cache(maxsize=8)
def _radius2(s: int) -> np.ndarray:
    x, y = _coords(s, s)
    c = (s - 1) / 2
    return ((x - c) ** 2 + (y - c) ** 2) / (s / 2) ** 2


def _blob(rng: np.random.Generator, s: int) -> np.ndarray:
    """Smooth blob: low-pass noise plus a radial falloff, thresholded, largest component kept."""
    cells = int(rng.integers(3, 8))
    noise = cv2.resize(rng.standard_normal((cells, cells)).astype(np.float32), (s, s),
                       interpolation=cv2.INTER_CUBIC)
    v = noise * rng.uniform(0.3, 0.9) + rng.uniform(0.4, 0.8) - _radius2(s)
    mask = (v > 0).astype(np.uint8) * 255
    mask[:2], mask[-2:], mask[:, :2], mask[:, -2:] = 0, 0, 0, 0
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n > 2:
        mask = np.where(labels == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA]), 255, 0).astype(np.uint8)
    return mask


def _star(rng: np.random.Generator, s: int) -> np.ndarray:
    """Star-shaped polygon with smooth random radii, sometimes with thin spikes (limbs, ears, tails)."""
    theta = np.linspace(0, 2 * np.pi, 160, endpoint=False)
    r = np.ones_like(theta)
    for k in range(1, 7):
        r += rng.normal(0, 0.3 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.5:
        for _ in range(rng.integers(1, 5)):
            d = np.angle(np.exp(1j * (theta - rng.uniform(0, 2 * np.pi))))
            r += rng.uniform(0.4, 1.5) * np.exp(-0.5 * (d / rng.uniform(0.03, 0.12)) ** 2)
    r = np.maximum(r, 0.15)
    r *= (s / 2 - 3) / r.max()
    c = (s - 1) / 2
    pts = np.stack([c + r * np.cos(theta), c + r * np.sin(theta)], axis=1)
    mask = np.zeros((s, s), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return mask


def random_shape(rng: np.random.Generator, s: int) -> np.ndarray:
    """Object alpha (float32 [s,s] in [0,1], anti-aliased): a blob or a star polygon, sometimes with
    thin sticks attached, because thin structures are where segmentation fails first."""
    mask = _blob(rng, s) if rng.random() < 0.5 else _star(rng, s)
    if rng.random() < 0.3:
        c = np.array([(s - 1) / 2, (s - 1) / 2])
        for _ in range(rng.integers(1, 4)):
            a = rng.uniform(0, 2 * np.pi, 2)
            p1 = c + rng.uniform(0.2, 0.35) * s * np.array([np.cos(a[0]), np.sin(a[0])])
            p2 = p1 + rng.uniform(0.1, 0.25) * s * np.array([np.cos(a[1]), np.sin(a[1])])
            pts = np.clip(np.stack([c, p1, p2]), 3, s - 4)
            cv2.polylines(mask, [np.round(pts).astype(np.int32)], False, 255,
                          int(rng.integers(2, 6)), cv2.LINE_AA)
    return cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32) * (1 / 255)


# --------------------------------------------------------------------------------------------- clips


@dataclass
class _Layer:
    """A moving object: its RGBA canvas, canvas->frame-0 poses and coarse elastic grids."""

    canvas: np.ndarray
    poses: list[np.ndarray]
    grids: tuple[np.ndarray, np.ndarray]


class SyntheticClips:
    """Endless procedural clips (see module docstring); `size` is (height, width).

    `seed` seeds the generator used when `sample` is called without one. Each clip draws between
    `min_objects` and `max_objects` objects; `min_area_frac` is the least part of the frame an object
    must visibly cover in frame 0 (objects hidden more become unlabelled scenery, so a clip can end up
    with fewer than `min_objects`).
    """

    def __init__(
        self,
        size: tuple[int, int] = (192, 192),
        frames: int = 3,
        max_objects: int = 3,
        seed: int = 0,
        min_area_frac: float = 0.004,
        min_objects: int = 1,
    ) -> None:
        if frames < 1 or not 1 <= min_objects <= max_objects:
            raise ValueError("need frames >= 1 and 1 <= min_objects <= max_objects")
        self.size = (int(size[0]), int(size[1]))
        self.frames = frames
        self.max_objects = max_objects
        self.min_objects = min_objects
        self.min_area_frac = min_area_frac
        self._rng = np.random.default_rng(seed)

    def sample(self, rng: np.random.Generator | None = None) -> Clip:
        """A new random clip (deterministic for a given generator state)."""
        rng = self._rng if rng is None else rng
        while True:
            clip = self._render(rng)
            if clip is not None:
                return clip

    # The scene: a background texture seen by a moving camera, objects posed in frame-0 coordinates
    # and carried along by the camera on top of their own motion.
    def _render(self, rng: np.random.Generator) -> Clip | None:
        h, w = self.size
        t_count = self.frames
        unit = max(h, w) / 192  # motion magnitudes below are tuned for 192 px frames

        bg_palette = random_palette(rng)
        bg_family = str(rng.choice(TEXTURE_FAMILIES, p=_FAMILY_WEIGHTS))
        bh, bw = int(h * 1.3), int(w * 1.3)
        background = random_texture(rng, bh, bw, bg_palette, bg_family)
        cameras = self._camera_path(rng, (bh, bw), unit)
        to_frame = [cam @ np.linalg.inv(cameras[0]) for cam in cameras]

        n = int(rng.integers(self.min_objects, self.max_objects + 1))
        level = loguniform(rng, 0.7, 28) * unit  # clip motion level, px per frame
        looks = [(bg_family, bg_palette)]
        layers: list[_Layer] = []
        for _ in range(n):
            layers.append(self._make_layer(rng, looks, layers, level, unit))

        order = rng.permutation(n)  # depth order, bottom first; object ids are 1..n by list index
        frames, labels = [], []
        for t in range(t_count):
            frame = warp(background, cameras[t], (h, w), border=cv2.BORDER_REFLECT101)
            label = np.zeros((h, w), np.uint8)
            tau = t / max(t_count - 1, 1)
            for k in order:
                layer = layers[k]
                self._composite(frame, label, layer, to_frame[t] @ layer.poses[t],
                                layer.grids[0] * (1 - tau) + layer.grids[1] * tau, k + 1)
            frame[..., 3] = 1.0
            frames.append(frame)
            labels.append(label)

        areas = np.bincount(labels[0].ravel(), minlength=n + 1)[1:]
        keep = np.flatnonzero(areas >= self.min_area_frac * h * w)
        if keep.size == 0:
            return None
        lut = np.zeros(256, np.uint8)
        lut[keep + 1] = np.arange(1, keep.size + 1)
        frames = photometric_clip(frames, rng)
        return Clip(to_chw(frames), lut[np.stack(labels)], int(keep.size))

    def _camera_path(self, rng: np.random.Generator, bg_shape: tuple[int, int], unit: float
                     ) -> list[np.ndarray]:
        """Background-texture -> frame matrices: static, or panning/zooming/rolling smoothly."""
        h, w = self.size
        bh, bw = bg_shape
        moving = rng.random() < 0.75
        speed = loguniform(rng, 0.5, 15) * unit if moving else 0.0
        a = rng.uniform(0, 2 * np.pi)
        velocity = speed * np.array([np.cos(a), np.sin(a)])
        zoom_rate = rng.normal(0, 0.04) if moving else 0.0
        roll_rate = rng.normal(0, 1.5) if moving else 0.0
        zoom0, roll0 = rng.uniform(1.0, 1.3), rng.normal(0, 5)
        start = np.array([bw / 2, bh / 2]) + rng.uniform(-0.1, 0.1, 2) * (bw, bh)
        return [
            affine_matrix(src_center=tuple(start + velocity * t), dst_center=(w / 2, h / 2),
                          angle_deg=roll0 + roll_rate * t, scale=zoom0 * np.exp(zoom_rate * t))
            for t in range(self.frames)
        ]

    def _make_layer(self, rng: np.random.Generator, looks: list[tuple[str, np.ndarray]],
                    layers: list[_Layer], level: float, unit: float) -> _Layer:
        """A textured shape with its own smooth trajectory. About a third of the objects borrow the
        look of the background or an earlier object (distractors); some head for an earlier object so
        that they cross and occlude each other."""
        h, w = self.size
        s = int(0.75 * max(h, w))
        if rng.random() < 0.35:
            family, base = looks[rng.integers(len(looks))]
            palette = _similar_palette(rng, base)
            if rng.random() < 0.5:  # same colours, different material
                family = str(rng.choice(TEXTURE_FAMILIES, p=_FAMILY_WEIGHTS))
        else:
            family, palette = str(rng.choice(TEXTURE_FAMILIES, p=_FAMILY_WEIGHTS)), random_palette(rng)
        looks.append((family, palette))
        canvas = random_texture(rng, s, s, palette, family)
        alpha = random_shape(rng, s)
        canvas[..., 3] = alpha

        scale0 = np.sqrt(loguniform(rng, 0.03, 0.4) * h * w / max(alpha.sum(), 1.0))
        aspect = loguniform(rng, 0.4, 2.5) if rng.random() < 0.4 else 1.0
        shear = rng.normal(0, 0.15)
        angle0 = rng.uniform(0, 360)
        c0 = rng.uniform(0.15, 0.85, 2) * (w, h)
        speed = level * rng.uniform(0.4, 1.4)
        a = rng.uniform(0, 2 * np.pi)
        velocity = speed * np.array([np.cos(a), np.sin(a)])
        t_last = max(self.frames - 1, 1)
        centre = ((s - 1) / 2, (s - 1) / 2)
        if layers and rng.random() < 0.35:
            other = layers[rng.integers(len(layers))]
            goal = (other.poses[-1] @ (centre[0], centre[1], 1.0))[:2] + rng.normal(0, 0.08 * w, 2)
            velocity = (goal - c0) / t_last
        accel = rng.normal(0, 0.15 * speed, 2)
        spin = rng.normal(0, 2 + 0.6 * level / unit)
        growth = rng.normal(0, 0.02 + 0.004 * level / unit)
        poses = [
            affine_matrix(src_center=centre, dst_center=tuple(c0 + velocity * t + accel * t * t / 2),
                          angle_deg=angle0 + spin * t, scale=scale0 * np.exp(growth * t),
                          aspect=aspect, shear=shear)
            for t in range(self.frames)
        ]
        cells = int(rng.integers(3, 6))
        strength = rng.uniform(0, 2.5) * unit
        return _Layer(canvas, poses, (random_grid(rng, cells, strength), random_grid(rng, cells, strength)))

    def _composite(self, frame: np.ndarray, label: np.ndarray, layer: _Layer, matrix: np.ndarray,
                   grid: np.ndarray, obj_id: int) -> None:
        """Warp one object (affine + elastic) into its bounding box only, and paint it over `frame`."""
        h, w = self.size
        s = layer.canvas.shape[0]
        corners = np.array([[0, 0, 1], [s, 0, 1], [0, s, 1], [s, s, 1]], float) @ matrix[:2].T
        pad = 3 * float(np.abs(grid).max()) + 2
        x0, y0 = np.floor(corners.min(axis=0) - pad).astype(int)
        x1, y1 = np.ceil(corners.max(axis=0) + pad).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        shape = (y1 - y0, x1 - x0)
        shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], float)
        rgba = warp(layer.canvas, shift @ matrix, shape, field=field_from_grid(grid, shape))
        alpha = rgba[..., 3:].copy()
        label[y0:y1, x0:x1][alpha[..., 0] > 0.5] = obj_id
        roi = frame[y0:y1, x0:x1]
        # all four channels at once (NumPy is slow on 3-of-4 channel views); channel 3 is reset to 1
        # once per frame in _render
        rgba -= roi
        rgba *= alpha
        roi += rgba
