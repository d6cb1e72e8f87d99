"""Application settings remembered between runs (QSettings), and the engine settings they imply."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from stm_core.engine.settings import INTERACTIVE_PREVIEW_FRAMES, EngineSettings

from .shortcuts import KeyMap, clashes, keymap, same_key

DEVICES = ("auto", "cpu", "cuda")
MODELS = {"stm-small": "Small STM (stm-small: the shipped model)", "stm-r50": "STM with ResNet-50 (stm-r50: the "
          "official checkpoint)"}
"""The networks, by what they are: a file the user trained is a stm-small too (QA pass 97: "Shipped model")."""
RECOMMENDED_HEIGHT = -1
RECOMMENDED_ADAPT = -1  # adaptation steps as the weights recommend
RANGES = {"mem_every": (1, 100), "max_memory": (2, 500), "adapt_steps": (RECOMMENDED_ADAPT, 500)}
"""What the settings dialog offers; a saved value outside (a hand-edited file) means the defaults."""
PROCESS_HEIGHTS = {RECOMMENDED_HEIGHT: "Recommended by the model", 0: "Source size", 480: "480 px", 360: "360 px",
                   240: "240 px"}
MAX_RECENT = 8


@dataclass(frozen=True)
class Preferences:
    """Everything the settings dialog edits. `process_height`: the frame height the network runs at, 0 for
    the source size, RECOMMENDED_HEIGHT (default) for the height the weights were trained at; masks are
    always stored and exported at the source size. `weights` "" means the shipped weights. `adapt_steps`:
    fine-tune the network on the annotated frames before each propagation (0: off)."""

    device: str = "auto"
    model: str = "stm-small"
    weights: str = ""
    mem_every: int = 5
    max_memory: int = 20
    process_height: int = RECOMMENDED_HEIGHT
    adapt_steps: int = RECOMMENDED_ADAPT  # the weights decide: 60 steps for the shipped model (+0.24 J&F)
    workspace_beside_video: bool = False

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(model=self.model, weights=self.weights or None, device=self.device,
                              mem_every=self.mem_every, max_memory=self.max_memory,
                              process_height=None if self.process_height == RECOMMENDED_HEIGHT
                              else self.process_height,
                              adapt_steps=None if self.adapt_steps == RECOMMENDED_ADAPT else self.adapt_steps,
                              preview_frames=INTERACTIVE_PREVIEW_FRAMES)

    def missing_weights(self) -> str | None:
        """Why these preferences cannot run, where the model has no shipped weights and no file is named (the
        official model): None when they can."""
        if self.model == "stm-small" or self.weights:
            return None
        return f"{MODELS[self.model]} has no weights shipped with the program: choose its weights file " \
               "(STM_weights.pth) under Weights file."

    def engine_differs(self, other: "Preferences") -> bool:
        """Whether switching to `other` needs a new engine session."""
        return self.engine_settings() != other.engine_settings()


class AppSettings:
    """Reads and writes `Preferences` and the recent-files list in a QSettings store."""

    def __init__(self, store: QSettings | None = None) -> None:
        self._store = store or QSettings()

    def preferences(self) -> Preferences:
        defaults = Preferences()
        values: dict[str, Any] = {}
        for f in fields(Preferences):
            default = getattr(defaults, f.name)
            raw = self._store.value(f"engine/{f.name}", default)
            try:
                values[f.name] = _coerce(raw, type(default))
            except (TypeError, ValueError):
                values[f.name] = default
        prefs = replace(defaults, **values)
        if prefs.device not in DEVICES or prefs.model not in MODELS or prefs.process_height not in PROCESS_HEIGHTS \
                or any(not lo <= getattr(prefs, name) <= hi for name, (lo, hi) in RANGES.items()):
            return defaults
        return prefs

    def set_preferences(self, prefs: Preferences) -> None:
        for f in fields(Preferences):
            self._store.setValue(f"engine/{f.name}", getattr(prefs, f.name))
        self._store.sync()

    def engine_settings(self) -> EngineSettings:
        return self.preferences().engine_settings()

    def recent(self) -> list[str]:
        """Recently opened videos that still exist (one on a drive that is not mounted now stays stored and
        shows again when it is back)."""
        return [p for p in self._stored_recent() if Path(p).exists()]

    def opened_before(self) -> bool:
        """Whether a video was ever opened (listed as recent), also where none of them exists now."""
        return bool(self._stored_recent())

    def _stored_recent(self) -> list[str]:
        value: Any = self._store.value("recent", [])
        if isinstance(value, str):  # an INI store returns a one-item list as a plain string
            value = [value]
        return [str(v) for v in value or []]

    def window_layout(self) -> tuple[QByteArray, QByteArray] | None:
        """The main window's saved geometry and dock layout (`QMainWindow.saveGeometry`/`saveState`)."""
        geometry, state = self._store.value("window/geometry"), self._store.value("window/state")
        if isinstance(geometry, QByteArray) and isinstance(state, QByteArray):
            return geometry, state
        return None

    def set_window_layout(self, geometry: QByteArray, state: QByteArray) -> None:
        self._store.setValue("window/geometry", geometry)
        self._store.setValue("window/state", state)
        self._store.sync()

    def keymap(self) -> KeyMap:
        """Every command's keys, with the user's own where chosen (a stored map that cannot be read, or whose
        keys clash, as a hand edit might make it, gives the table's keys)."""
        try:
            chosen = json.loads(str(self._store.value("shortcuts", "{}")))
        except ValueError:
            return keymap()
        keys = keymap(chosen if isinstance(chosen, dict) else {})
        return keymap() if clashes(keys) else keys

    def set_keymap(self, keys: KeyMap) -> None:
        """Store the keys that differ from the table's (later versions' new defaults still reach the rest)."""
        table = keymap()
        chosen = {c: list(k) for c, k in keys.items() if [same_key(x) for x in k] != [same_key(x) for x in table[c]]}
        self._store.setValue("shortcuts", json.dumps(chosen))
        self._store.sync()

    def add_recent(self, path: str) -> None:
        """`path` first in the recent videos, once: the same video by another path (a link) is one entry."""
        same = _resolved(path)
        items = [path] + [p for p in self._stored_recent() if p != path and (same is None or _resolved(p) != same)]
        self._store.setValue("recent", items[:MAX_RECENT])
        self._store.sync()


def _resolved(path: str) -> Path | None:
    """`path` with its links followed, None where that cannot be done (a loop of links: QA pass 66)."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return None


def _coerce(raw: object, kind: type) -> object:
    """QSettings returns strings from INI files; turn them back into the preference's type."""
    if kind is bool:
        return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
    return kind(raw)
