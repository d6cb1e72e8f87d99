"""How imported mask files map onto the open video's objects: a folder that this program's export wrote of
this very video gives its objects back (their ids, names and colours), and one object's masks (a per-object
export folder, SAM or XMem style) become one object over each frame's present mask."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from stm_core.errors import InputError
from stm_core.io.masks import OBJECT_DIR_PREFIX, add_objects, objects_listings
from stm_core.io.packed_masks import PackedMasks

from .document import Document
from .objects import ObjectTable, TrackedObject, default_color


def one_object(document: Document, folder: Path, masks: PackedMasks, progress: Callable[[int, int], None]
               ) -> tuple[TrackedObject, bool, PackedMasks]:
    """One object's masks as a new object (as an export's `objects.json` lists it, else named after the
    folder; not added yet) over each frame's present mask, with `progress(done, total)` after each; ValueError
    when all 254 labels are taken. Masks that an export wrote of one of this video's own objects replace
    that object's (the bool says so): QA pass 28 found a copy of the object added, taking its pixels."""
    several = next((i for i in masks if len(masks.objects(i)) > 1), None)
    if several is not None:
        raise InputError(f"the mask for frame {several + 1} in {folder} holds several objects: import the "
                         "folder as annotated frames or results instead")
    session = document.session
    assert session is not None
    obj, own = exported_object(document.objects, folder) or (None, False)
    if obj is None:
        obj_id = document.objects.free_id()
        obj = TrackedObject(obj_id, folder.name, default_color(obj_id))

    def merged(index: int, mask: np.ndarray) -> np.ndarray | None:
        """The frame's present mask with the object's pixels from `mask`. A blank mask (a per-object export
        writes one where the object is absent) changes nothing for a new object (QA pass 15: it made frames
        annotated, or waiting for objects to enter), and removes the video's own object."""
        labels = session.labels(index)
        if mask.any():
            return add_objects(labels, (mask > 0).astype(np.uint8) * obj.id)
        if own and labels is not None and (labels == obj.id).any():
            return np.where(labels == obj.id, 0, labels).astype(np.uint8)
        return None
    return obj, own, masks.mapped(merged, progress)


def painted_over(document: Document, masks: PackedMasks, as_annotations: bool,
                 new_object: TrackedObject | None, own: bool) -> list[int]:
    """The annotated frames whose painted pixels the import of `masks` changes, asked about first: for the
    video's `own` object's masks, where they differ from what is painted; for a new object, where its pixels
    cover painted ones; for whole masks as annotations, where they replace the painted mask."""
    session = document.session
    assert session is not None
    if own:
        return [i for i in masks if (painted := session.snapshot(i).annotation) is not None
                and not np.array_equal(painted, masks[i])]
    if new_object is not None:
        return [i for i in masks if (painted := session.snapshot(i).annotation) is not None
                and painted[masks[i] == new_object.id].any()]
    return document.annotations_replaced_by(masks) if as_annotations else []


def exported_object(objects: ObjectTable, folder: Path) -> tuple[TrackedObject, bool] | None:
    """The object a per-object folder of this program's export (`binary/object_NNN`) holds, as its
    `objects.json` two levels up lists it, with its id in the video where that id is free here, and whether
    it is this video's own object (its id in the video holds an object the user named or coloured, as
    `video_ids` judges a whole export, and without a listed `video_id` by the same name and colour); None
    for other folders (QA pass 28: it came back named "object_001", its name and colour lost)."""
    if not folder.name.startswith(OBJECT_DIR_PREFIX) or not folder.name[len(OBJECT_DIR_PREFIX):].isdigit():
        return None
    file_id = int(folder.name[len(OBJECT_DIR_PREFIX):])
    for listing in objects_listings(folder.parent.parent):
        items = [i for i in listing if isinstance(i, dict) and i.get("id") == file_id] \
            if isinstance(listing, list) else []
        obj = next(iter(ObjectTable.from_json(items[:1])), None)
        if obj is None:
            continue
        video_id = items[0].get("video_id", obj.id)
        here = objects.get(video_id) \
            if isinstance(video_id, int) and not isinstance(video_id, bool) else None
        if here is not None and not here.default_look \
                and ("video_id" in items[0] or (here.name, here.color) == (obj.name, obj.color)):
            return here, True  # (an export that kept the ids lists no `video_id`: its name and colour tell)
        free = [i for i in (video_id, obj.id) if isinstance(i, int) and 0 < i < 255
                and objects.get(i) is None]
        return replace(obj.as_id(free[0] if free else objects.free_id()), visible=True), False
    return None


def video_ids(objects: ObjectTable, folder: Path, work_id: str | None = None
              ) -> tuple[np.ndarray, list[TrackedObject]] | None:
    """For masks that a renumbered export wrote of this very video (its `objects.json` gives each object's
    id in the video, and names this work, `work_id`, or the video still has one of them as the user made it):
    the table from the files' ids back to the video's, and the listed objects the video no longer has (to add
    back); else None. Without it a renumbered export re-imported swapped objects, also after a rename or a
    removal (QA passes 19-20), and where no object had been renamed or recoloured (QA pass 93)."""
    for listing in objects_listings(folder):
        items = [i for i in listing if isinstance(i, dict)] if isinstance(listing, list) else []
        described = [next(iter(ObjectTable.from_json([i])), None) for i in items]  # in the listing's order
        video_ids = [i.get("video_id") for i in items]
        if not items or None in described \
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 255 for v in video_ids):
            return None
        own = [objects.get(v) for v in video_ids]
        ours = work_id is not None and all(i.get("work_id") == work_id for i in items)
        named = any("work_id" in i for i in items)  # an export that names its work tells it alone (QA pass 104:
        # in a copy of the clip with an object renamed, another work's files were renumbered onto its ids)
        if not ours and (named or not any(o is not None and not o.default_look for o in own)):
            return None  # another video (a copy of the clip): the files' 1..N stay
        back = np.arange(256, dtype=np.uint8)
        missing = []
        for obj, video_id, mine in zip(described, video_ids, own):
            back[obj.id] = video_id
            if mine is None:
                missing.append(replace(obj, id=video_id))
        return back, missing
    return None


def describe_new_objects(document: Document, folder: Path, known: set[int], only: set[int] | None = None
                         ) -> None:
    """Name, colour and show or hide the objects an import added as an export of this program described
    them in its `objects.json` (beside `masks/` or in the folder itself), and add the objects it lists
    that no mask shows yet (`only` these ids: one frame's mask brings only the objects it shows); without one
    the added objects keep default names. Objects the document had before the import stay as they are, unless
    still named and coloured by default (the object a new video opens with: an export's names are what a
    re-import should show)."""
    for listing in objects_listings(folder):
        described = ObjectTable.from_json(listing)  # leaves out what is not an object; never raises
        for obj in described:
            if obj.id not in known and (only is None or obj.id in only):
                take_listed(document, obj)
        return


def take_listed(document: Document, obj: TrackedObject) -> None:
    """Give the document's object `obj.id` the name, colour and visibility a listing gives it, adding it if
    the document has none."""
    doc = document
    if obj.id in doc.objects:
        doc.rename_object(obj.id, obj.name)
        doc.set_object_color(obj.id, obj.color)
    else:
        doc.add_object(obj.name, obj.id, obj.color)
    doc.set_object_visible(obj.id, obj.visible)
