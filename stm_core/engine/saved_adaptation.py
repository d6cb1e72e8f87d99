"""An adaptation of the network to one video's annotations, as bytes to keep with the work: on a CPU it takes
minutes, and without it a restarted session adapted again, and gave other masks than before."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..model.checkpoint import DEFAULT_WEIGHTS
from .settings import EngineSettings

FORMAT = "stm-annotator-adaptation/1"

ADAPTATION_SETTINGS = ("model", "weights", "device", "fast", "random_init", "adapt_steps", "adapt_lr", "adapt_batch")
"""The engine settings an adaptation (and the loaded network) depends on; memory settings are not among them."""


MAGIC = b"STM-ADAPTATION\n"
"""The file starts with it, then the SHA-256 of the rest: damaged bytes are found before they are used (QA pass
84: a NaN written into the weights made every mask empty, and corrections went on from it)."""


@dataclass(frozen=True)
class SavedAdaptation:
    """What `unpack` gives back: the adapted weights and what they were adapted to."""

    work: tuple[int, int]  # the working size (h, w) it was made at
    annotations: tuple[tuple[int, str], ...]  # `Annotations.key()` of the annotations it was made from
    pictures: str  # `pictures_digest` of the annotated frames it was trained on
    state_dict: dict[str, torch.Tensor]


def pictures_digest(images: list[np.ndarray]) -> str:
    """Of the annotated frames' pictures an adaptation trains on (at the working size): one saved for another
    video whose masks are the same is told apart by them (QA pass 84: a copied file was used)."""
    digest = hashlib.sha256()
    for image in images:
        digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


def made_with(settings: EngineSettings) -> dict:
    """What an adaptation depends on besides the video: the settings it was made with, and the weights file it
    started from as it was then (a file trained again in place makes it another network's)."""
    identity = {name: getattr(settings, name) for name in ADAPTATION_SETTINGS}
    if not settings.random_init:
        path = Path(settings.weights) if settings.weights else DEFAULT_WEIGHTS
        try:
            stat = path.resolve().stat()
            identity["weights_file"] = [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
        except OSError:
            identity["weights_file"] = None
    return identity


def pack(work: tuple[int, int], annotations: tuple[tuple[int, str], ...], pictures: str, network: torch.nn.Module,
         identity: dict) -> bytes:
    """The adaptation as bytes (fp32 weights, on the CPU, so that it gives the very same masks again), made
    from the network `made_with` says (`identity`)."""
    buffer = io.BytesIO()
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in network.state_dict().items()}
    torch.save({"format": FORMAT, "made_with": identity, "work": list(work), "pictures": pictures,
                "annotations": [[i, d] for i, d in annotations], "state_dict": state}, buffer)
    payload = buffer.getvalue()
    return MAGIC + hashlib.sha256(payload).digest() + payload


def unpack(data: bytes, identity: dict) -> SavedAdaptation | None:
    """The adaptation `pack` made, if it was made from the network `identity` describes (`made_with`); None
    otherwise, and for bytes that are not one (a damaged file: the next run adapts again, as without it)."""
    start = len(MAGIC) + hashlib.sha256().digest_size
    if not data.startswith(MAGIC) or hashlib.sha256(data[start:]).digest() != data[len(MAGIC):start]:
        return None
    try:
        saved = torch.load(io.BytesIO(data[start:]), map_location="cpu", weights_only=True)
        if not isinstance(saved, dict) or saved.get("format") != FORMAT or saved.get("made_with") != identity:
            return None
        work = tuple(int(x) for x in saved["work"])
        annotations = tuple((int(i), str(d)) for i, d in saved["annotations"])
        state = saved["state_dict"]
        if len(work) != 2 or not isinstance(state, dict) or not all(
                isinstance(v, torch.Tensor) and bool(torch.isfinite(v).all()) for v in state.values()):
            return None
    except Exception:  # torch raises many kinds for damaged data
        return None
    return SavedAdaptation(work, annotations, str(saved.get("pictures")), state)  # type: ignore[arg-type]
