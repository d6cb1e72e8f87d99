"""A video's masks as one COCO instance-segmentation file, for training code that reads COCO rather than
palette PNGs (detectron2, mmdetection, torchvision's CocoDetection, pycocotools itself).

One COCO image per frame and one annotation per object present in it: the mask as compressed RLE (encoded by
pycocotools, so every COCO reader decodes it), its area and box. Objects that share a name share a category
(two objects both named "car" are two instances of one class); `track_id`, the object's label in the masks,
tells instances apart across frames, as video datasets built on COCO do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from pycocotools import mask as mask_utils

from .atomic import atomic_write_bytes
from .masks import objects_listings


class CocoDocument:
    """Collects a video's frames one at a time (an export streams them) and writes them as one JSON file."""

    def __init__(self, objects: Sequence[tuple[int, str]], frame_size: tuple[int, int], description: str) -> None:
        """`objects`: (label in the masks, name) of every object; `frame_size`: (height, width)."""
        self._size = frame_size
        self._category_of: dict[int, int] = {}
        self._categories: list[dict] = []
        by_name: dict[str, int] = {}
        for label, name in objects:
            if name not in by_name:
                by_name[name] = len(by_name) + 1
                self._categories.append({"id": by_name[name], "name": name, "supercategory": "object"})
            self._category_of[label] = by_name[name]
        self._info = {"description": description}
        self._images: list[dict] = []
        self._annotations: list[dict] = []

    def add_frame(self, index: int, file_name: str, labels: np.ndarray) -> None:
        """Frame `index` (0-based; its COCO image id is index + 1, since COCO ids start at 1) and its label map."""
        if labels.shape != self._size:
            raise ValueError(f"frame {index}: mask of size {labels.shape}, expected {self._size}")
        height, width = self._size
        image_id = index + 1
        self._images.append({"id": image_id, "file_name": file_name, "height": height, "width": width,
                             "frame_index": index})
        present = [label for label in np.unique(labels).tolist() if label in self._category_of]
        if not present:
            return
        stack = np.asfortranarray(np.stack([labels == label for label in present], axis=-1).astype(np.uint8))
        rles = mask_utils.encode(stack)
        areas = mask_utils.area(rles)
        boxes = mask_utils.toBbox(rles)
        for label, rle, area, box in zip(present, rles, areas, boxes):
            self._annotations.append({
                "id": len(self._annotations) + 1, "image_id": image_id, "category_id": self._category_of[label],
                "track_id": label, "iscrowd": 0, "area": int(area), "bbox": [float(v) for v in box],
                "segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
            })

    def to_json(self) -> dict:
        return {"info": self._info, "images": self._images, "annotations": self._annotations,
                "categories": self._categories}

    def write(self, path: Path) -> None:
        """Atomically, like every other output."""
        atomic_write_bytes(path, json.dumps(self.to_json(), ensure_ascii=False).encode("utf-8"))


def object_names(folder: Path, ids: Sequence[int]) -> list[tuple[int, str]]:
    """(id, name) of each object: the names the application's export wrote into an `objects.json` in `folder`
    or beside it, else "object N"."""
    names: dict[int, str] = {}
    for listing in objects_listings(folder):
        try:
            names = {int(item["id"]): str(item["name"]) for item in listing}
            break
        except (ValueError, KeyError, TypeError):
            continue
    return [(i, names.get(i, f"object {i}")) for i in ids]
