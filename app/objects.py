"""The annotated objects: label id, name, display colour and visibility; plain data, no Qt.

Label ids are the values in the mask (1..254, 0 is background) and never change once given, so masks,
exports and the workspace agree; names and colours are only for the annotator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from stm_core.io.masks import DAVIS_PALETTE

MAX_LABEL = 254
Color = tuple[int, int, int]


def default_color(label: int) -> Color:
    """The DAVIS palette colour of a label, so the overlay matches the exported palette PNGs."""
    r, g, b = (int(v) for v in DAVIS_PALETTE[label])
    return (r, g, b)


@dataclass
class TrackedObject:
    """One object the annotator segments through the video."""

    id: int
    name: str
    color: Color
    visible: bool = True

    @property
    def default_look(self) -> bool:
        """Still named and coloured as added (the user gave it nothing an import's `objects.json` should keep)."""
        return self.name == f"Object {self.id}" and tuple(self.color) == default_color(self.id)

    def as_id(self, obj_id: int) -> TrackedObject:
        """This object under another id: a name or colour it had only by default (from its old id) becomes the new
        id's default (QA pass 94: an export's object 2 imported as object 4 kept 2's default green, that of the
        video's own object 2)."""
        return replace(self, id=obj_id, name=f"Object {obj_id}" if self.name == f"Object {self.id}" else self.name,
                       color=default_color(obj_id) if tuple(self.color) == default_color(self.id) else self.color)


class ObjectTable:
    """Objects ordered by label id; adding picks the smallest free id, so ids stay small and stable. The ids of
    removed objects are retired: saved masks may still hold their pixels (left out when read, rewritten as the
    autosave catches up), so a new object takes one only when no other id is free (QA pass 87: a new object
    given a removed one's id owned its old pixels on every frame not rewritten yet, after a crash or a load)."""

    def __init__(self, objects: list[TrackedObject] | None = None) -> None:
        self._objects: dict[int, TrackedObject] = {}
        self._retired: set[int] = set()
        for obj in objects or []:
            self._objects[obj.id] = obj

    def __iter__(self):
        return iter(sorted(self._objects.values(), key=lambda o: o.id))

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, obj_id: object) -> bool:
        return obj_id in self._objects

    def get(self, obj_id: int) -> TrackedObject | None:
        return self._objects.get(obj_id)

    def ids(self) -> list[int]:
        return sorted(self._objects)

    def add(self, obj_id: int | None = None, name: str | None = None, color: Color | None = None) -> TrackedObject:
        """Add an object; without `obj_id` the smallest free label is used."""
        if obj_id is None:
            obj_id = self.free_id()
        if not 1 <= obj_id <= MAX_LABEL:
            raise ValueError(f"object ids lie in 1..{MAX_LABEL}, not {obj_id}")
        if obj_id in self._objects:
            return self._objects[obj_id]
        self._retired.discard(obj_id)
        obj = TrackedObject(obj_id, name or f"Object {obj_id}", color or default_color(obj_id))  # see default_look
        self._objects[obj_id] = obj
        return obj

    def free_id(self) -> int:
        """The smallest label no object has, retired ones last (ValueError when all are taken)."""
        free = [i for i in range(1, MAX_LABEL + 1) if i not in self._objects]
        if not free:
            raise ValueError(f"at most {MAX_LABEL} objects fit in one mask")
        return next((i for i in free if i not in self._retired), free[0])

    def retired(self) -> list[int]:
        """The ids of removed objects whose pixels saved masks may still hold (and that no object has again)."""
        return sorted(self._retired)

    def retire(self, ids: Iterable[int]) -> None:
        """Mark ids no object has as retired (those a saved workspace lists as removed)."""
        self._retired.update(int(i) for i in ids if int(i) not in self._objects)

    def ensure(self, ids: list[int] | set[int]) -> list[int]:
        """Add an entry for every label that masks use but the table lacks; return the added ids."""
        added = [int(i) for i in sorted(ids) if int(i) != 0 and int(i) not in self._objects]
        for obj_id in added:
            self.add(obj_id)
        return added

    def remove(self, obj_id: int) -> None:
        if self._objects.pop(obj_id, None) is not None:
            self._retired.add(obj_id)

    def to_json(self) -> list[dict]:
        return [dict(asdict(o), color=list(o.color)) for o in self]

    @classmethod
    def from_json(cls, items: object) -> "ObjectTable":
        """The objects of a saved list; an item that is not a valid object (a hand edit: id 300, a colour of
        two numbers) is left out, and anything but a list gives no objects (QA pass 14: id 300 crashed the
        overlay)."""
        objects = []
        for item in items if isinstance(items, list) else ():
            try:
                obj_id, (r, g, b) = int(item["id"]), (int(v) for v in item["color"])
                if 1 <= obj_id <= MAX_LABEL and all(0 <= v <= 255 for v in (r, g, b)):
                    objects.append(TrackedObject(obj_id, str(item["name"]), (r, g, b), bool(item.get("visible", True))))
            except (KeyError, TypeError, ValueError, OverflowError):  # 1e400 is a float JSON reads, int() refuses
                continue
        return cls(objects)
