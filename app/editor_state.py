"""What the annotator is doing right now (tool, brush, selected object, overlay look, export choices); a
model, no widgets.

Kept apart from the document because it is per-user view state: it changes no mask, yet is saved in the
workspace so reopening a video brings back the same tool, brush and object, and the export dialog the same
folder and outputs as the video's last export.
"""

from __future__ import annotations

import math
from enum import Enum

from PySide6.QtCore import QObject, Signal

from .overlay import OverlayMode

MIN_BRUSH, MAX_BRUSH = 1, 400


class Tool(str, Enum):
    BRUSH = "brush"
    ERASER = "eraser"


EXPORT_KEYS = {"folder": str, "palette": bool, "binary": bool, "soft": bool, "video": bool, "coco": bool,
               "renumber": bool, "fps": float, "grow": int}


class EditorState(QObject):
    """Tool, brush diameter (frame pixels), whether the brush keeps other objects, selected object id, overlay
    mode and opacity, last export's choices.

    Setters emit `changed` only when a value really changes, so views can refresh on every signal.
    """

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._tool = Tool.BRUSH
        self._brush_size = 24
        self._keep_others = False
        self._selected: int | None = None
        self._mode = OverlayMode.FILLED
        self._opacity = 0.5
        self._export: dict = {}

    @property
    def tool(self) -> Tool:
        return self._tool

    def set_tool(self, tool: Tool) -> None:
        self._set("_tool", Tool(tool))

    @property
    def brush_size(self) -> int:
        return self._brush_size

    def set_brush_size(self, size: int) -> None:
        self._set("_brush_size", int(min(max(size, MIN_BRUSH), MAX_BRUSH)))

    def grow_brush(self) -> None:
        """Step by ~20 % so both a 2 px and a 200 px brush change at a usable pace."""
        self.set_brush_size(max(self._brush_size + 1, round(self._brush_size * 1.2)))

    def shrink_brush(self) -> None:
        self.set_brush_size(min(self._brush_size - 1, round(self._brush_size / 1.2)))

    @property
    def keep_others(self) -> bool:
        """The brush paints only over the background (and its own object), never over other objects: for
        painting an object right up to its neighbours without cutting into them."""
        return self._keep_others

    def set_keep_others(self, keep: bool) -> None:
        self._set("_keep_others", bool(keep))

    @property
    def selected_object(self) -> int | None:
        return self._selected

    def select_object(self, obj_id: int | None) -> None:
        self._set("_selected", obj_id)

    @property
    def overlay_mode(self) -> OverlayMode:
        return self._mode

    def set_overlay_mode(self, mode: OverlayMode) -> None:
        self._set("_mode", OverlayMode(mode))

    @property
    def opacity(self) -> float:
        return self._opacity

    def set_opacity(self, opacity: float) -> None:
        if not math.isfinite(opacity):  # a hand-edited NaN stopped the tool panel (QA pass 15)
            raise ValueError(f"opacity {opacity}")
        self._set("_opacity", float(min(max(opacity, 0.0), 1.0)))

    @property
    def export_choices(self) -> dict:
        """The last export's folder, outputs and frame rate (EXPORT_KEYS), for the next export dialog."""
        return dict(self._export)

    def set_export_choices(self, choices: dict) -> None:
        """Keeps only the known keys of the right types (a hand-edited workspace may hold anything)."""
        def valid(key: str, value: object) -> bool:
            kind = EXPORT_KEYS.get(key)
            if kind is float:  # JSON writes 24.0 back as 24.0, a hand edit may write 24 (or NaN)
                return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            return kind is not None and isinstance(value, kind)
        self._set("_export", {k: v for k, v in choices.items() if valid(k, v)})

    def to_json(self) -> dict:
        return {"tool": self._tool.value, "brush_size": self._brush_size, "keep_others": self._keep_others,
                "selected_object": self._selected,
                "overlay_mode": self._mode.value, "opacity": self._opacity, "export": self._export}

    def apply_json(self, data: dict) -> None:
        """Restore saved values, ignoring any that are missing or invalid (an old or hand-edited workspace)."""
        for key, setter in (("tool", self.set_tool), ("brush_size", self.set_brush_size),
                            ("overlay_mode", self.set_overlay_mode), ("opacity", self.set_opacity)):
            try:
                if key in data:
                    setter(data[key])
            except (TypeError, ValueError):
                continue
        if isinstance(data.get("keep_others"), bool):
            self.set_keep_others(data["keep_others"])
        selected = data.get("selected_object")
        self.select_object(int(selected) if isinstance(selected, int) else None)
        export = data.get("export")
        self.set_export_choices(export if isinstance(export, dict) else {})

    def _set(self, attr: str, value: object) -> None:
        if getattr(self, attr) != value:
            setattr(self, attr, value)
            self.changed.emit()
