"""A downscaled copy of the shared DAVIS-2016 sequences to carry to the GPU machine (../shared does not travel).

    python scripts/pack_davis.py --height 240 --out runs/davis_small   # about 5 MB, same layout as the original

Frames are resized with area averaging and re-saved as JPEG; masks with nearest neighbour, so labels stay exact.
Training crops come from frames downscaled to 240 px anyway, so nothing the recipe uses is lost; validation
scores on this copy are only comparable with each other (the official numbers use the 480p masks).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis2016"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--davis-root", default=str(SHARED))
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    src, out = Path(a.davis_root), Path(a.out)
    if not (src / "JPEGImages" / "480p").is_dir():
        print(f"DAVIS data not found at {src}", file=sys.stderr)
        return 2
    total = 0
    for kind, ext, interp in (("JPEGImages", "jpg", cv2.INTER_AREA), ("Annotations", "png", cv2.INTER_NEAREST)):
        for path in sorted((src / kind / "480p").glob(f"*/*.{ext}")):
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            h, w = image.shape[:2]
            small = cv2.resize(image, (round(w * a.height / h), a.height), interpolation=interp)
            target = out / kind / "480p" / path.parent.name / path.name  # the layout the code expects
            target.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(target), small, [cv2.IMWRITE_JPEG_QUALITY, 92] if ext == "jpg" else [])
            total += target.stat().st_size
    print(f"{out}: {total / 2**20:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
