"""Geometric and photometric augmentation shared by the synthetic and the DAVIS clip sources.

The network is trained from scratch on a CPU, so every clip must cost a few milliseconds: all pieces are
OpenCV calls on small images. Images are float32 HxWx4 (RGB plus an alpha / spare channel) or uint8
HxWx4, because OpenCV's 4-channel kernels are about three times faster than its 3-channel ones; the
callers drop the fourth channel at the very end.

Geometry uses 3x3 homogeneous matrices that map *source* pixel coordinates to *destination* ones, so
that object motion, camera motion and crops compose by matrix product.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

__all__ = [
    "affine_matrix",
    "random_affine",
    "random_grid",
    "field_from_grid",
    "elastic_field",
    "warp",
    "random_color_matrix",
    "apply_color",
    "random_blur",
    "add_noise",
    "photometric_clip",
    "loguniform",
    "to_chw",
]


def loguniform(rng: np.random.Generator, low: float, high: float) -> float:
    """A scale-like quantity (size, speed) drawn so that small and large values are equally common."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def affine_matrix(
    src_center: tuple[float, float] = (0.0, 0.0),
    dst_center: tuple[float, float] = (0.0, 0.0),
    angle_deg: float = 0.0,
    scale: float = 1.0,
    aspect: float = 1.0,
    shear: float = 0.0,
    flip: bool = False,
) -> np.ndarray:
    """3x3 matrix moving `src_center` to `dst_center` after shear, area-preserving aspect, scale and rotation.

    `aspect` stretches x by sqrt(aspect) and y by 1/sqrt(aspect) so that it changes shape, not size;
    `flip` mirrors horizontally about `src_center`.
    """
    sx = scale * np.sqrt(aspect) * (-1.0 if flip else 1.0)
    sy = scale / np.sqrt(aspect)
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    rot = np.array([[c, -s], [s, c]])
    lin = rot @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([sx, sy])
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = np.asarray(dst_center, float) - lin @ np.asarray(src_center, float)
    return m


def random_affine(
    rng: np.random.Generator,
    center: tuple[float, float],
    max_rotation: float = 20.0,
    scale_range: tuple[float, float] = (0.9, 1.1),
    max_shear: float = 0.1,
    max_translation: float = 0.0,
) -> np.ndarray:
    """A random rotation/scale/shear about `center` plus a translation, as in STM's image pretraining."""
    shift = rng.uniform(-max_translation, max_translation, size=2)
    return affine_matrix(
        src_center=center,
        dst_center=(center[0] + shift[0], center[1] + shift[1]),
        angle_deg=rng.uniform(-max_rotation, max_rotation),
        scale=rng.uniform(*scale_range),
        shear=rng.uniform(-max_shear, max_shear),
    )


def random_grid(rng: np.random.Generator, cells: int, magnitude: float) -> np.ndarray:
    """Coarse random displacements (pixels) on a cells x cells grid; interpolating two of them in time
    gives a smoothly changing deformation for free."""
    return (rng.standard_normal((cells, cells, 2)) * magnitude).astype(np.float32)


def field_from_grid(grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Upsample a coarse displacement grid to a smooth dense HxWx2 field (a cheap stand-in for a TPS)."""
    return cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def elastic_field(
    rng: np.random.Generator, shape: tuple[int, int], magnitude: float, cells: int = 4
) -> np.ndarray:
    """Smooth random HxWx2 displacement field with per-node standard deviation `magnitude` pixels."""
    return field_from_grid(random_grid(rng, cells, magnitude), shape)


@lru_cache(maxsize=16)
def _pixel_grid(h: int, w: int) -> np.ndarray:
    grid = np.empty((h, w, 2), np.float32)
    grid[..., 0] = np.arange(w, dtype=np.float32)[None, :]
    grid[..., 1] = np.arange(h, dtype=np.float32)[:, None]
    grid.setflags(write=False)
    return grid


def warp(
    image: np.ndarray,
    matrix: np.ndarray,
    out_shape: tuple[int, int],
    field: np.ndarray | None = None,
    border: int = cv2.BORDER_CONSTANT,
    nearest: bool = False,
) -> np.ndarray:
    """Resample `image` into an `out_shape` (h, w) canvas through `matrix` (source -> destination).

    With `field` (HxWx2, destination pixels) the output pixel p reads the source at
    matrix^-1 (p + field(p)): an affine and an elastic warp in one cv2.remap call.
    """
    h, w = out_shape
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    if field is None:
        return cv2.warpAffine(
            image, matrix[:2].astype(np.float32), (w, h), flags=interp, borderMode=border
        )
    inv = np.linalg.inv(matrix)[:2].astype(np.float32)
    points = cv2.transform(_pixel_grid(h, w) + field, inv)
    return cv2.remap(image, points, None, interp, borderMode=border)


def _hue_rotation(degrees: float) -> np.ndarray:
    """Rotation of RGB space about the grey axis: a linear hue shift."""
    a = np.deg2rad(degrees)
    k = np.full((3, 3), 1.0 / 3.0)
    cross = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]]) / np.sqrt(3.0)
    return np.cos(a) * np.eye(3) + np.sin(a) * cross + (1 - np.cos(a)) * k


_GREY = np.array([0.299, 0.587, 0.114])


def random_color_matrix(
    rng: np.random.Generator,
    brightness: float = 0.1,
    contrast: float = 0.2,
    saturation: float = 0.3,
    hue: float = 10.0,
    gain: float = 0.08,
) -> np.ndarray:
    """4x4 colour transform (brightness, contrast about mid-grey, saturation, hue, white balance) for
    RGB+1 pixels; it is linear, so clip-level and per-frame jitters combine by matrix product."""
    sat = rng.uniform(1 - saturation, 1 + saturation)
    con = rng.uniform(1 - contrast, 1 + contrast)
    lin = np.diag(1 + rng.uniform(-gain, gain, 3)) @ _hue_rotation(rng.uniform(-hue, hue))
    lin = con * lin @ (sat * np.eye(3) + (1 - sat) * np.outer(np.ones(3), _GREY))
    m = np.eye(4)
    m[:3, :3] = lin
    m[:3, 3] = 0.5 * (1 - con) + rng.uniform(-brightness, brightness)
    return m


def apply_color(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a `random_color_matrix` to a float32 HxWx4 image whose fourth channel is 1."""
    out = cv2.transform(image, matrix.astype(np.float32))
    return np.clip(out, 0.0, 1.0, out=out)


def random_blur(image: np.ndarray, rng: np.random.Generator, max_sigma: float = 1.5,
                max_length: int = 9) -> np.ndarray:
    """Gaussian (defocus) or linear motion blur, so the network also sees the soft frames of real video."""
    if rng.random() < 0.5:
        return cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, max_sigma))
    length = int(rng.integers(3, max_length + 1))
    kernel = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    a = rng.uniform(0, np.pi)
    dx, dy = np.cos(a) * c, np.sin(a) * c
    cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
    return cv2.filter2D(image, -1, kernel / kernel.sum())


def add_noise(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Sensor-like noise: half-resolution Gaussian noise upsampled, which is cheaper than full-resolution
    noise and closer to the correlated noise of compressed video."""
    h, w = image.shape[:2]
    small = rng.standard_normal(((h + 1) // 2, (w + 1) // 2, 4), dtype=np.float32) * sigma
    small[..., 3] = 0.0
    image += cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(image, 0.0, 1.0, out=image)


def photometric_clip(
    frames: list[np.ndarray],
    rng: np.random.Generator,
    strength: float = 1.0,
    blur_prob: float = 0.2,
    noise_prob: float = 0.4,
) -> list[np.ndarray]:
    """Per-clip colour jitter plus a smaller per-frame one (lighting changes), occasional blur, noise.

    `frames` are float32 HxWx4 with channel 3 equal to 1; returns new frames.
    """
    clip_m = random_color_matrix(
        rng, 0.12 * strength, 0.25 * strength, 0.35 * strength, 12 * strength, 0.1 * strength
    )
    sigma = rng.uniform(0.005, 0.03) if rng.random() < noise_prob else 0.0
    out = []
    for frame in frames:
        m = random_color_matrix(rng, 0.04, 0.06, 0.06, 3, 0.03) @ clip_m
        frame = apply_color(frame, m)
        if rng.random() < blur_prob:
            frame = np.clip(random_blur(frame, rng), 0.0, 1.0)
        if sigma > 0:
            frame = add_noise(frame, rng, sigma)
        out.append(frame)
    return out


def to_chw(frames: list[np.ndarray]) -> np.ndarray:
    """Stack HxWx4 frames into the clip layout float32 [T,3,H,W], dropping the fourth channel."""
    h, w = frames[0].shape[:2]
    out = np.empty((len(frames), 3, h, w), np.float32)
    for i, frame in enumerate(frames):
        out[i] = frame[..., :3].transpose(2, 0, 1)
    return out
