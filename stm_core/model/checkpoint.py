"""Load and save network weights: the project's own files and the official `STM_weights.pth` layout.

Our files are dicts {"format", "config", "state_dict", "meta"} with half-precision tensors (small enough to
ship). The official file is a bare state dict with `module.`-prefixed names; it loads strictly into the
`stm-r50` configuration. Every failure becomes a `WeightsError` that names the file and what is wrong.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import WeightsError
from ..io.atomic import atomic_write_bytes
from .config import CONFIGS, MIN_PROCESS_HEIGHT, StmConfig, get_config
from .stm import STM

FORMAT = "stm-annotator/1"
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "resources" / "weights" / "stm_small.pt"


_WRAPPERS = ("module.", "_orig_mod.")
"""Prefixes that wrappers put before every key: DataParallel's, torch.compile's (QA pass 93)."""


def _strip(state: dict[str, torch.Tensor], source: str = "the weights file") -> dict[str, torch.Tensor]:
    """Drop the prefixes of wrappers (`_WRAPPERS`: DataParallel's twice over from a wrapped wrapper: QA pass 89)
    and BatchNorm step counters (absent in old files). A name held both with and without a prefix is refused:
    which one counts cannot be told (QA pass 89: the later one was taken without a word)."""
    out = {}
    for key, v in state.items():
        k = key
        while k.startswith(_WRAPPERS):
            k = k.split(".", 1)[1]
        if k.endswith("num_batches_tracked"):
            continue
        if k in out:
            raise WeightsError(f"{source} holds {k} twice (with and without a wrapper's prefix such as 'module.'): "
                               "it is not one network's weights")
        out[k] = v
    return out


def _read(path: Path) -> Any:
    if not path.is_file():  # QA pass 21: a folder and /dev/null were "not found"
        raise WeightsError(f"{path} is a folder, not a weights file" if path.is_dir() else
                           f"{path} is not a regular file, not a weights file" if path.exists() else
                           f"weights file not found: {path}")
    try:
        with warnings.catch_warnings():  # torch warns about legacy formats on the way to failing
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/foreign files
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if text.startswith("Weights only load failed") and _is_training_checkpoint(path):
            return _read_training_checkpoint(path)
        if text.startswith("Weights only load failed"):
            reason = "no plain tensor checkpoint: not a weights file of this program or of STM"
        elif zipfile.is_zipfile(path):  # torch's own words name its internals (QA pass 73: "miniz", "inline_container")
            reason = "a zip archive that is not a whole PyTorch checkpoint: damaged, or another kind of archive"
        else:
            reason = "damaged, cut short, or another kind of file"
        raise WeightsError(f"{path} is not a readable PyTorch checkpoint ({reason})") from None


_RNG_STATE_TYPES = [np.zeros(0).__reduce__()[0], np.ndarray, np.dtype, type(np.dtype(np.uint32))]
"""What the trainer's `last.pt` holds besides tensors and plain values: NumPy's random state."""


def _read_training_checkpoint(path: Path) -> dict[str, Any]:
    """The trainer's `last.pt`, unpickled as safely as a weights file (only NumPy's random-state types are
    allowed besides), so that the weights of an interrupted run can be used (QA pass 37: they were refused
    with advice to use a best.pt or final.pt that a stopped run has not written)."""
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(_RNG_STATE_TYPES):
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise WeightsError(f"{path} is a training checkpoint of this program whose weights cannot be read safely; "
                           f"{_finished_weights(path)}") from None


def _finished_weights(path: Path) -> str:
    """Where the weights files of the run that wrote the training checkpoint `path` are, or how to get them."""
    found = [name for name in ("best.pt", "final.pt") if (path.parent / name).is_file()]
    if found:
        return f"the run's weights files are {' and '.join(found)} in the same folder"
    return "the run writes best.pt and final.pt when it ends: rerun its train command to resume it"


def _is_training_state(obj: dict[str, Any]) -> bool:
    return isinstance(obj.get("model"), dict) and "optimizer" in obj


def _is_training_checkpoint(path: Path) -> bool:
    """Whether a file the safe loader refused is the trainer's `last.pt` (its pickle names the optimizer and
    random states), read without unpickling anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickle = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
            data = archive.read(pickle) if pickle else b""
    except (OSError, zipfile.BadZipFile):
        return False
    return all(key in data for key in (b"optimizer", b"rng", b"model"))


def _misfits(model: STM, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str], list[str]]:
    """(missing keys, unexpected keys, shape mismatches) of a stripped `state` against `model`'s own."""
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    return missing, unexpected, shapes


def load_state_into(model: STM, state: dict[str, torch.Tensor], source: str) -> None:
    """Strict load of a `_strip`ped state that reports the first missing/unexpected/mis-shaped keys instead of a
    wall of text."""
    missing, unexpected, shapes = _misfits(model, state)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (first: {shapes[0]})")
        raise WeightsError(f"{source} does not fit model {model.cfg.name}: " + "; ".join(parts))
    broken = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:  # QA pass 30: one NaN weight was taken, and every mask came out empty without a word
        raise WeightsError(f"{source} is damaged: {len(broken)} of its tensors hold NaN or infinite values "
                           f"(first: {broken[0]})")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()},
                          strict=False)


def load_model(model_name: str = "stm-small", weights: str | Path | None = None,
               random_init: bool = False) -> STM:
    """Build a network and load its weights (None: the shipped default for stm-small).

    Our own files carry their configuration, which wins over `model_name`; a bare state dict (the official
    checkpoint) is loaded into `model_name`'s configuration, else into the one it fits best (the official file
    is `stm-r50` even when no model was named; the model's `cfg` says which, and callers that were told a
    model compare).
    """
    if random_init:
        return STM(get_config(model_name)).eval()
    if weights is None:
        if model_name != "stm-small":
            raise WeightsError(f"model {model_name} has no shipped weights: pass its weights file "
                               "(e.g. the official STM_weights.pth)")
        weights = DEFAULT_WEIGHTS
    path = Path(weights)
    obj = _read(path)
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{path} holds no state dict")
    meta: dict[str, Any] = {}
    if "format" in obj and obj["format"] != FORMAT and "config" in obj:  # QA pass 79: loaded without a word
        raise WeightsError(f"{path} is in weights format {obj['format']!r}, which this version does not read (it "
                           f"reads {FORMAT!r}): was it written by a newer version?")
    if obj.get("format") == FORMAT:
        try:
            cfg = StmConfig.from_dict(obj["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsError(f"{path} has a broken model configuration, not the settings of an STM network "
                               f"({exc})") from None
        state = obj.get("state_dict")
        meta = obj.get("meta") or {}
    elif _is_training_state(obj):  # the trainer's last.pt: its latest weights, and the heights it inherited
        cfg, state, meta = get_config(model_name), obj["model"], obj.get("meta") or {}
        warnings.warn(f"{path} is a training checkpoint: its weights at step {obj.get('step')} are used; "
                      f"{_finished_weights(path)}")
    else:
        cfg = get_config(model_name)
        state = obj.get("state_dict", obj) if isinstance(obj.get("state_dict"), dict) else obj
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} holds no tensor state dict")
    state = _strip(state, str(path))
    model = STM(cfg)
    try:
        load_state_into(model, state, str(path))
    except WeightsError:
        closest = cfg if obj.get("format") == FORMAT else _closest_config(state, cfg)
        if closest == cfg:
            raise
        model = STM(closest)
        load_state_into(model, state, str(path))
    model.recommended_height = _working_height(meta, "process_height", path)
    model.recommended_adapt_height = _working_height(meta, "adapt_process_height", path)
    return model.eval()


def _working_height(meta: dict[str, Any], key: str, path: Path) -> int | None:
    """A working height the weights recommend (None: none), checked as `--process-height` is: a hand-edited 'abc'
    was a bare "invalid literal for int()" naming no file, and 8 was taken (QA pass 37)."""
    value = meta.get(key)
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_PROCESS_HEIGHT:
        raise WeightsError(f"{path} has a broken meta.{key}: {value!r} (a working height is a whole number "
                           f"of at least {MIN_PROCESS_HEIGHT} px, or 0 for none)")
    return value


def _closest_config(state: dict[str, torch.Tensor], named: StmConfig) -> StmConfig:
    """The configuration whose network `state` fits best (the most keys present with their shapes; `named`, the
    one asked for, where none fits better): a bare state dict is loaded into it, and an error then names what
    does not fit that network (QA pass 89: a file fitting neither was reported against the smaller network,
    which has fewer keys to miss, though stm-r50 was asked for). `state` is stripped (`_strip`)."""
    def fitting(cfg: StmConfig) -> int:
        with torch.device("meta"):  # shapes only: no memory for a network built just to compare names
            own = STM(cfg).state_dict()
        return sum(k in state and tuple(state[k].shape) == tuple(v.shape) for k, v in own.items())
    return max(CONFIGS.values(), key=lambda cfg: (fitting(cfg), cfg == named))


def checkpoint_bytes(model: STM, meta: dict[str, Any] | None = None) -> bytes:
    """Serialise weights in half precision with their configuration (the shippable form): CPU tensors, so a
    file trained on a GPU loads anywhere, and the working heights of the weights it continued from, unless
    `meta` gives its own."""
    state = {k: (v.half() if v.is_floating_point() else v).cpu() for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    inherited = {"process_height": model.recommended_height, "adapt_process_height": model.recommended_adapt_height}
    meta = {**{k: v for k, v in inherited.items() if v}, **(meta or {})}
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "config": model.cfg.to_dict(), "state_dict": state, "meta": meta}, buf)
    return buf.getvalue()


def save_weights(model: STM, path: str | Path, meta: dict[str, Any] | None = None) -> None:
    """Write a shippable weights file atomically."""
    atomic_write_bytes(Path(path), checkpoint_bytes(model, meta))
