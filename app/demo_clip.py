"""A procedural demo clip, so a new user can try the whole workflow without downloading anything.

Three textured shapes move over a textured background (one passes behind another), 40 frames of 480x270;
the first frame's true mask is written too, so opening the demo shows objects ready to propagate.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from stm_core.io.masks import write_mask

NUM_FRAMES = 40
WIDTH, HEIGHT = 480, 270
_DONE_MARK = ".complete"


def _texture(rng: np.random.Generator, h: int, w: int, base: tuple[int, int, int], scale: int) -> np.ndarray:
    """Smooth coloured noise plus fine grain: enough texture for appearance matching to work on."""
    coarse = rng.normal(0, 1, (max(h // scale, 2), max(w // scale, 2), 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 6, (h, w, 3)).astype(np.float32)
    img = np.array(base, np.float32) + 28 * smooth + grain
    return np.clip(img, 0, 255).astype(np.uint8)


def _background(rng: np.random.Generator) -> np.ndarray:
    bg = _texture(rng, HEIGHT, WIDTH, (96, 110, 92), 24)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    stripes = (np.sin(xx / 9.0 + yy / 23.0) * 14).astype(np.float32)
    return np.clip(bg.astype(np.float32) + stripes[..., None], 0, 255).astype(np.uint8)


def _shape_masks(t: float) -> list[np.ndarray]:
    """Masks of the three objects at time t in [0, 1], back to front."""
    masks = []
    disc = np.zeros((HEIGHT, WIDTH), np.uint8)
    cx, cy = int(60 + 330 * t), int(140 + 60 * np.sin(2 * np.pi * t))
    cv2.ellipse(disc, (cx, cy), (46, 34), 25 * t, 0, 360, 1, -1)
    masks.append(disc)
    box = np.zeros_like(disc)
    centre = (float(380 - 220 * t), float(90 + 40 * t))
    pts = cv2.boxPoints((centre, (90.0, 52.0), 120.0 * t)).astype(np.int32)
    cv2.fillConvexPoly(box, pts, 1)
    masks.append(box)
    star = np.zeros_like(disc)
    sx, sy = 240 + 120 * np.cos(2 * np.pi * t), 200 - 30 * np.sin(4 * np.pi * t)
    angles = np.linspace(0, 2 * np.pi, 11)[:-1] + 2 * t
    radii = np.where(np.arange(10) % 2 == 0, 40, 18)
    poly = np.stack([sx + radii * np.cos(angles), sy + radii * np.sin(angles)], 1).astype(np.int32)
    cv2.fillPoly(star, [poly], 1)
    masks.append(star)
    return masks


def render_frame(t: float, background: np.ndarray, textures: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """RGB frame and its label map (1..3) at time t."""
    frame = background.copy()
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    shift = int(40 * t)
    for obj_id, (mask, tex) in enumerate(zip(_shape_masks(t), textures, strict=True), start=1):
        moved = np.roll(tex, shift, axis=1)
        frame[mask == 1] = moved[mask == 1]
        labels[mask == 1] = obj_id
    return frame, labels


def ensure_demo_clip(folder: Path) -> tuple[Path, Path]:
    """Generate the clip in `folder` unless a complete one is there; return (frames dir, first mask path)."""
    frames_dir, masks_dir = folder / "Demo clip", folder / "masks"  # the frames folder names the window
    first_mask = masks_dir / "00000.png"
    if (folder / _DONE_MARK).exists() and frames_dir.is_dir():
        return frames_dir, first_mask
    frames_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    background = _background(rng)
    textures = [_texture(rng, HEIGHT, WIDTH, base, 6) for base in ((70, 140, 215), (225, 150, 60), (225, 225, 235))]
    for i in range(NUM_FRAMES):
        frame, labels = render_frame(i / (NUM_FRAMES - 1), background, textures)
        cv2.imwrite(str(frames_dir / f"{i:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        if i == 0:
            write_mask(first_mask, labels)
    (folder / _DONE_MARK).write_text("ok\n")
    return frames_dir, first_mask
