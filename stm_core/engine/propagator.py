"""Propagation of annotated masks through a video with STM, frame by frame, with caches that outlive a run.

Per frame: one query encoding (cached per frame, since frames never change), one memory read over the bank,
one decoder pass for all objects at once, soft aggregation, then one memory encoding of the new result (the
temporary previous-frame memory, and every N-th frame a bank entry). Memory encodings of annotated frames are
cached by (frame, mask content, objects), so re-propagating after a correction re-encodes only what changed.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import cv2
import numpy as np
import torch

from ..errors import OutOfMemoryError, StmError
from ..io.frames import FrameSource
from ..io.masks import mask_digest
from ..model.aggregation import aggregate
from ..model.checkpoint import load_model
from ..model.fusion import fold_batchnorm, store_weights_in
from ..model.padding import zero_border
from ..model.stm import STM, QueryFeatures
from .annotations import Annotations
from .cuda_graphs import CAPTURE_LOCK, GraphedNetwork
from .feature_cache import FeatureCache
from .frame_outputs import FrameResult, FrameTensors, PendingResult, frame_outputs
from .frame_prep import Geometry, frame_tensor, labels_to_probs
from .hardware import (autocast, compute_dtype, cores_shared, describe_precision, prepare_compute_thread,
                       resolve_device)
from .memory import MemoryBank, annotated_memory
from .run_ahead import on_network_thread, run_ahead
from .saved_adaptation import ADAPTATION_SETTINGS, made_with, pack, pictures_digest, unpack
from .settings import RECOMMENDED_ADAPT_STEPS, EngineSettings


SHARED_CORES_MAX_PIXELS = 250_000
"""Working sizes up to this many pixels (360 px of a 16:9 video; 480 px is 410,000) share the CPU's cores out
between the network thread and the look-ahead thread (one intra-op thread each on two cores) instead of both
driving all of them: their layers are too small to use two cores well. On a 2-core AMX CPU, frames took
20-30% less time at 176 px, 8% at 240 px, 4-7% at 360 px, but 5% more at 480 px, where the memory read on the
network thread dominates (BENCHMARKS.md)."""

AdaptProgress = Callable[[int, int], None]
"""(adaptation steps done, steps planned)"""


RUN_AHEAD = 2
"""Frames the network may run ahead of the caller storing results: enough to keep a GPU fed while a result is
copied to the host and compressed, few enough that a cancelled run stops at once."""

WARM_UP_MAX_PIXELS = 480 * 864
"""`warm_up` runs the network once only up to this working size: there the run takes 0.2-0.4 s of a 2-core
CPU, about what it saves later; on larger frames it would take seconds of the annotator's CPU for the same
saving."""

REFRESH_FRACTION = 2
"""A correction re-adapts from the previous adaptation with 1/REFRESH_FRACTION of the steps."""

ADAPTATION_HISTORY = 3
"""Adaptations kept per engine, the latest first: undoing a correction finds the one made before it and
gives the masks from before the correction again, without adapting anew."""

CHECKPOINTS = 4
"""Passes whose progress the engine keeps after they end (see `_Checkpoint`): the two halves of a run both ways
and the runs back from the annotated frames they reach."""

MIN_ADAPT_SIZE = 32
"""Test-time adaptation crops multiples of 16 px from the frames; smaller working sizes propagate unadapted."""


_SERIALS = itertools.count(1)


@dataclass
class _Adaptation:
    """A network adapted to one video's annotations: trainable (to continue from) and folded (to run). Its
    `serial` tells it from every other made in this process; 0 is one taken back from an earlier session."""

    video: tuple  # (frame source id, working size, object ids)
    annotations: tuple  # ((frame index, mask digest), ...)
    trainable: STM
    folded: STM
    pictures: str  # `pictures_digest` of the annotated frames it was trained on
    serial: int = field(default_factory=lambda: next(_SERIALS))


@dataclass
class _Checkpoint:
    """How far a pass over `order` got: the memory bank after each of its last few frames. A run asked for
    again with the same network, annotations and start (after a cancel, or the half of a run both ways that
    had finished) continues from it instead of recomputing frames the caller still holds, and gives the masks
    the whole run would have given."""

    order: list[int]
    banks: OrderedDict[int, MemoryBank]  # frames of `order` done -> the memory for the next one

    KEPT = RUN_AHEAD + 4  # the caller has stored all but the last few frames the network computed

    def keep(self, done: int, bank: MemoryBank) -> None:
        self.banks[done] = bank.copy()
        while len(self.banks) > self.KEPT:
            self.banks.popitem(last=False)


def _finish(fg: torch.Tensor, geo: Geometry, lut: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    """Foreground probabilities [K,Hp,Wp] -> (the objects' aggregated probabilities to memorise [K,1,Hp,Wp], zero
    in the padding, the frame's result tensors)."""
    agg = aggregate(fg, dim=0)
    return (zero_border(agg[1:], geo.pads).unsqueeze(1), *frame_outputs(agg, geo, lut))


def _same_footage(video: tuple, other: tuple) -> bool:
    """Whether two adaptation keys' videos (`_adaptation_key`) are the same frames at the same working size."""
    return video[:2] == other[:2]


def _is_oom(exc: BaseException) -> bool:
    """Out of memory, as torch, the allocator, or oneDNN (which cannot create a primitive it has no memory for:
    QA pass 81, under a memory limit) say it."""
    text = str(exc).lower()
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text \
        or "could not create a primitive" in text


class Propagator:
    """Owns the network on its device and the caches; `run` yields results one frame at a time."""

    def __init__(self, settings: EngineSettings, model: STM | None = None,
                 query_cache_bytes: int = 768 << 20, memory_cache_bytes: int = 256 << 20) -> None:
        self.settings = settings
        self._model = model
        self._device: torch.device | None = None
        self._placed = False
        self._query_cache = FeatureCache(query_cache_bytes)
        self._memory_cache = FeatureCache(memory_cache_bytes)
        self._run_lock = threading.Lock()
        self._run_waiting = threading.Event()  # a run waits for the lock: a warm-up stops short
        self._load_lock = threading.Lock()
        self._folded: STM | None = None  # the loaded network with BatchNorm folded in, for inference
        self._adapted: _Adaptation | None = None  # the latest adaptation, the one a correction continues
        self._adaptations: list[_Adaptation] = []  # the latest first, at most ADAPTATION_HISTORY
        self._saved: bytes | None = None  # an earlier session's adaptation, taken when a run first adapts
        self._weights_identity: dict | None = None  # `made_with` the settings when the network was loaded
        self._graphed: dict[int, GraphedNetwork] = {}
        self._checkpoints: OrderedDict[tuple, _Checkpoint] = OrderedDict()  # by pass (see `_run`), latest last
        self.memory_frames = 0

    # ---- model and device ---------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        if self._device is None:
            self._device = resolve_device(self.settings.device)
        return self._device

    @property
    def device_name(self) -> str:
        d = self.device
        return torch.cuda.get_device_name(d) if d.type == "cuda" else "CPU"

    @property
    def model(self) -> STM:
        """The network, loaded on first use (so opening a video never waits for weights)."""
        with self._load_lock:
            if self._model is None:
                s = self.settings
                self._weights_identity = made_with(s)  # before: a file rewritten meanwhile is not stamped on
                self._model = load_model(s.model, s.weights, s.random_init)
            if not self._placed:
                self._model = self._model.to(self.device).eval()
                if self._channels_last:
                    self._model = self._model.to(memory_format=torch.channels_last)
                if self.device.type == "cuda":  # fixed sizes per video; flash attention keeps long memories small
                    torch.backends.cudnn.benchmark = True
                    self._model.use_sdpa = True
                self._placed = True
            self._model.top_k = self.settings.top_k
        return self._model

    def _for_inference(self, model: STM) -> STM:
        """`model` (a copy the propagator owns) with BatchNorm folded into the convolutions and, where the
        engine computes in reduced precision, their weights stored in it."""
        model = fold_batchnorm(model.eval())
        dtype = compute_dtype(self.device, self.settings.fast)
        if dtype is not None:
            store_weights_in(model, dtype)
        return model.to(memory_format=torch.channels_last) if self._channels_last else model

    @property
    def adapt_steps(self) -> int:
        """Adaptation steps in use: the setting, or with None what the loaded weights recommend."""
        steps = self.settings.adapt_steps
        if steps is None:
            return RECOMMENDED_ADAPT_STEPS if self.model.recommended_adapt_height else 0
        return steps

    @property
    def process_height(self) -> int | None:
        """The working height in use: the setting, else the weights' recommendation (for adapted or plain
        propagation); None = source size."""
        return self._height(adapted=bool(self.adapt_steps))

    def _height(self, adapted: bool) -> int | None:
        h = self.settings.process_height
        if h is None and self._model is not None:
            m = self._model
            h = (m.recommended_adapt_height or m.recommended_height) if adapted else m.recommended_height
        return h or None

    @property
    def _channels_last(self) -> bool:
        # faster everywhere measured: with bf16 2-3x on an AVX-512 CPU and 10-15% on an H100, in fp32 1.1-1.6x on an
        # AVX2 CPU (scripts/profile_engine.py)
        return self.settings.fast

    def _net(self, model: STM) -> STM | GraphedNetwork:
        """What runs `model` frame by frame: on a GPU, CUDA graphs of it (`settings.cuda_graphs`), since there
        the kernel launches, not the kernels, take most of a frame's time; else the model itself."""
        if self.device.type != "cuda" or not self.settings.cuda_graphs:
            return model
        net = self._graphed.get(id(model))
        if net is None or net.model is not model:
            net = self._graphed[id(model)] = GraphedNetwork(model)
        return net

    @contextmanager
    def _compute(self) -> Iterator[None]:
        with torch.inference_mode(), autocast(self.device, enabled=self.settings.fast):
            yield

    # ---- cached encoders ----------------------------------------------------------------------------
    def _frame(self, frames: FrameSource, index: int, geo: Geometry) -> torch.Tensor:
        return frame_tensor(frames[index], geo, self.device, self._channels_last)

    def _query(self, model: STM, frames: FrameSource, index: int, geo: Geometry,
               frame: torch.Tensor) -> QueryFeatures:
        """Query features of `frame` (frame `index`), cached per network: frames never change, so neither do
        these (the caches are cleared when adaptation replaces the adapted network)."""
        key = ("q", frames.serial, index, geo.work, id(model))
        return self._query_cache.get_or_compute(key, lambda: self._net(model).encode_query(frame))

    def _annotation_memory(self, model: STM, frames: FrameSource, index: int, annotations: Annotations,
                           obj_ids: list[int], geo: Geometry) -> tuple[torch.Tensor, torch.Tensor]:
        key = ("m", frames.serial, index, annotations.digest(index), tuple(obj_ids), geo.work, id(model))

        def compute() -> tuple[torch.Tensor, torch.Tensor]:  # the label map is decoded only here
            probs = labels_to_probs(annotations[index], obj_ids, geo, self.device)
            return self._net(model).memorize(self._frame(frames, index, geo), probs)
        return self._memory_cache.get_or_compute(key, compute)

    def _plain(self) -> STM:
        """The loaded network, BatchNorm folded (made once)."""
        if self._folded is None:
            self._folded = self._for_inference(copy.deepcopy(self.model))
        return self._folded

    def _adaptation_key(self, frames: FrameSource, annotations: Annotations, geo: Geometry) -> tuple[tuple, tuple]:
        """(video, annotations) an adaptation is valid for: same frames and working size, and the same annotated
        frames with the same masks. Not the objects a run seeks: it adapts to every annotated object, so runs
        seeking different ones share it (QA pass 62: each run back seeking one more object adapted again, and
        evicted the adaptation and every cached feature of the run before)."""
        return (frames.serial, geo.work), annotations.key()

    def _model_for(self, frames: FrameSource, annotations: Annotations, geo: Geometry,
                   key: tuple[tuple, tuple] | None, cancel: threading.Event | None,
                   adapting: AdaptProgress | None) -> STM | None:
        """The network to propagate with (BatchNorm folded): the loaded one or, with adaptation on (`key` from
        `_adaptation_key`, None when off), a copy fine-tuned on these annotations at the working size, kept
        while they stay the same. None if cancelled meanwhile. A correction (same video and size, some
        annotation kept unchanged) continues from the previous adaptation for half the steps: the annotator
        waits half as long, for the same accuracy. So do objects that enter mid-video, since the weights do not
        depend on which objects are tracked (QA pass 30: each of the judo clip's entering objects cost a full
        adaptation, 10 minutes in all). Annotations adapted to recently (a correction undone) get that
        adaptation back, so they give the same masks as then."""
        if key is None:
            return self._plain()
        self._take_saved(frames)
        steps = self.adapt_steps
        video, annotated = key
        earlier = self._adaptation_for(key)
        if earlier is not None:  # the latest, or one from before a correction that was undone
            if earlier is not self._adapted:
                self.forget_features()  # computed with other weights
                self._remember(earlier)
            return earlier.folded
        previous = self._adapted if self._adapted is not None and _same_footage(self._adapted.video, video) \
            else None
        start = self.model
        if previous is not None and set(previous.annotations) & set(annotated):
            start, steps = previous.trainable, max(1, steps // REFRESH_FRACTION)
        from ..train.adapt import adapt  # training code: only imported when adaptation is on

        obj_ids = annotations.objects()
        lut = np.zeros(256, np.uint8)
        lut[obj_ids] = np.arange(1, len(obj_ids) + 1)
        size = geo.work[::-1]
        images = [cv2.resize(frames[i], size, interpolation=cv2.INTER_AREA) for i in sorted(annotations)]
        labels = [cv2.resize(lut[annotations[i]], size, interpolation=cv2.INTER_NEAREST) for i in sorted(annotations)]
        # on the network thread, which flushes denormals: an fp32 adaptation ran 1.7x slower without (Intel CPU)
        tuned = on_network_thread(lambda abandoned: adapt(
            start, images, labels, steps, self.settings.adapt_lr, self.settings.adapt_batch, fast=self.settings.fast,
            progress=None if adapting is None else lambda *step: None if abandoned() else adapting(*step),
            cancel=abandoned), cancel)
        if tuned is None or cancel is not None and cancel.is_set():
            return None
        self.forget_features()  # computed with other weights
        self._remember(_Adaptation(video, annotated, tuned, self._for_inference(copy.deepcopy(tuned)),
                                   pictures_digest(images)))
        return self._adaptations[0].folded

    def adaptation_bytes(self) -> bytes | None:
        """The latest adaptation, to keep with the work (`saved_adaptation`): before any run took it, the one
        `keep_saved` gave (the work's file is written again from it, not removed: QA pass 96); None where none."""
        adapted = self._adapted
        return self._saved if adapted is None else pack(adapted.video[1], adapted.annotations, adapted.pictures,
                                                        adapted.trainable, self._loaded_weights())

    def _loaded_weights(self) -> dict:
        """`made_with` the settings as the network was loaded (now for a network given ready-made)."""
        return self._weights_identity or made_with(self.settings)

    def keep_saved(self, data: bytes) -> None:
        """An adaptation `adaptation_bytes` gave in an earlier session: the first run that adapts takes it (if
        it was made with these settings and weights, at this working size, on these frames), and uses it where
        the annotations are those it was made from, or continues from it after a correction, as from one made in
        this session."""
        self._saved = data

    def _take_saved(self, frames: FrameSource) -> None:
        data, self._saved = self._saved, None
        if data is None or self._adaptations:
            return
        model = self.model  # loaded first: the adaptation must be of the weights it loaded
        saved = unpack(data, self._loaded_weights())
        if saved is None or not all(0 <= i < len(frames) for i, _ in saved.annotations):
            return
        size = saved.work[::-1]
        try:  # the frames it was trained on, as they are now: those of another video are not (QA pass 84)
            pictures = pictures_digest([cv2.resize(frames[i], size, interpolation=cv2.INTER_AREA)
                                        for i, _ in saved.annotations])
        except StmError:  # a frame that cannot be read: adapting anew says so
            return
        if pictures != saved.pictures:
            return
        trainable = copy.deepcopy(model)
        try:
            trainable.load_state_dict(saved.state_dict)
        except RuntimeError:  # of another network: adapting again is all it costs
            return
        self._remember(_Adaptation((frames.serial, saved.work), saved.annotations, trainable.eval(),
                                   self._for_inference(copy.deepcopy(trainable)), pictures, serial=0))

    def _adaptation_for(self, key: tuple[tuple, tuple]) -> _Adaptation | None:
        """The kept adaptation made for `key` (`_adaptation_key`), if any."""
        return next((a for a in self._adaptations if (a.video, a.annotations) == key), None)

    def _remember(self, adaptation: _Adaptation) -> None:
        """Make `adaptation` the latest (the one propagation and a correction's continuation use)."""
        self._adaptations = [adaptation] + [a for a in self._adaptations if a is not adaptation]
        del self._adaptations[ADAPTATION_HISTORY:]
        self._adapted = adaptation

    @property
    def adaptation_serial(self) -> int | None:
        """The latest adaptation's `serial` (None: none): when it changes, `adaptation_bytes` is another."""
        adapted = self._adapted
        return None if adapted is None else adapted.serial

    # ---- propagation ----------------------------------------------------------------------------------
    def warm_up(self, frame_size: tuple[int, int]) -> None:
        """Get ready for a first propagation of frames of `frame_size` (h, w): load the network, make its
        inference copy and (up to WARM_UP_MAX_PIXELS) run it once on a blank frame at the working size the
        first pass will use, on the network thread (where cuDNN keeps its tuned kernels). The first frame of
        that pass then comes without these one-time costs. Does nothing while a propagation runs and stops short
        when one is asked for meanwhile; meant for a background thread."""
        if not self._run_lock.acquire(blocking=False):
            return
        try:
            self.model
            if self.adapt_steps and not self.settings.preview_frames:
                return  # that pass adapts before its first frame, seconds this would not shorten
            geo = Geometry.for_source(frame_size, self._height(adapted=False))
            model = self._plain()
            if geo.work[0] * geo.work[1] <= WARM_UP_MAX_PIXELS and not self._run_waiting.is_set():
                for _ in run_ahead(self._run_once(model, geo), 1):
                    pass
        finally:
            self._run_lock.release()

    def _run_once(self, model: STM, geo: Geometry) -> Iterator[None]:
        """The per-frame network calls on a blank frame at `geo`'s working size (a generator, so that
        `run_ahead` runs it on the network thread)."""
        frame = frame_tensor(np.zeros((*geo.source, 3), np.uint8), geo, self.device, self._channels_last)
        with self._compute():
            query = model.encode_query(frame)
            if not self._run_waiting.is_set():  # else the run does this work itself, and sooner
                key, value = model.memorize(frame, torch.zeros_like(frame[:, :1]))
                _finish(model.segment(query, key.unsqueeze(2), value.unsqueeze(2)), geo, None)
        yield None

    def run(self, frames: FrameSource, start: int, seed: np.ndarray, order: list[int],
            annotations: Mapping[int, np.ndarray], obj_ids: list[int], cancel: threading.Event | None = None,
            adapting: AdaptProgress | None = None, preview: int = 0, held: int = 0,
            resumed: Callable[[list[int]], None] | None = None) -> Iterator[FrameResult]:
        """Propagate from frame `start` (mask `seed`) through `order`, memory holding every annotation;
        `adapting(done, steps)` reports test-time adaptation steps before the first adapted frame. When
        adaptation is still to do, `preview` > 0 first propagates that many frames of `order` (results flagged
        `preview`) so the annotator sees a mask at once instead of after the adaptation's seconds; the adapted
        pass then redoes them. After a correction the preview runs the previous adaptation with the new
        memory, which already shows the correction's effect; otherwise the unadapted network (`fill_only`).
        `held` says the caller still holds the results an earlier pass gave the first `held` frames of `order`:
        if that pass had the same start, network and annotations and got that far, this one continues from
        there (`resumed(frames skipped)` before its first result) instead of computing them again."""
        if not obj_ids:
            raise ValueError("no objects to propagate: the annotations are empty")
        self._run_waiting.set()
        with self._run_lock:
            self._run_waiting.clear()
            try:
                yield from self._run(frames, start, seed, order, Annotations.of(annotations), obj_ids, cancel,
                                     adapting, preview, held, resumed)
            except (RuntimeError, torch.OutOfMemoryError) as exc:
                if not _is_oom(exc):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                gpu = self.device.type == "cuda"
                raise OutOfMemoryError(
                    f"out of {'GPU' if gpu else 'system'} memory while propagating: lower the memory cap or the "
                    f"processing resolution{', or run on the CPU' if gpu else ''}") from None

    def _run(self, frames: FrameSource, start: int, seed: np.ndarray, order: list[int],
             annotations: Annotations, obj_ids: list[int], cancel: threading.Event | None,
             adapting: AdaptProgress | None, preview: int, held: int,
             resumed: Callable[[list[int]], None] | None) -> Iterator[FrameResult]:
        self.model  # loaded first: it may carry the recommended working height
        if not order:  # nothing to propagate: no adaptation either
            return
        geo = Geometry.for_source(frames.size, self.process_height)
        adapts = self.adapt_steps and min(geo.work) >= MIN_ADAPT_SIZE  # smaller: too small for its crops
        key = self._adaptation_key(frames, annotations, geo) if adapts else None
        adapted = self._adapted
        if preview > 0 and key is not None and self._adaptation_for(key) is None:  # else it is ready at once
            if adapted is not None and _same_footage(adapted.video, key[0]):
                quick, quick_geo, fill_only, network = adapted.folded, geo, False, adapted.annotations
            else:
                quick, quick_geo = self._plain(), Geometry.for_source(frames.size, self._height(adapted=False))
                fill_only, network = True, ()
            quick_pass = self._pass(quick, frames, start, seed, order[:preview], annotations, obj_ids, quick_geo,
                                    cancel, _Checkpoint(order[:preview], OrderedDict()))
            for result in quick_pass:
                yield result._replace(preview=True, fill_only=fill_only, network=network)
        model = self._model_for(frames, annotations, geo, key, cancel, adapting)
        if model is not None:
            network = key[1] if key is not None else ()
            pass_id = (frames.serial, start, order[0], mask_digest(seed), id(model), geo, tuple(obj_ids),
                       annotations.key())  # what makes two passes compute the same memories
            checkpoint = self._continued(pass_id, order, held)
            if checkpoint.banks and resumed is not None:
                resumed(order[:held])
            for result in self._pass(model, frames, start, seed, order, annotations, obj_ids, geo, cancel,
                                     checkpoint):
                yield result._replace(network=network)

    def _continued(self, pass_id: tuple, order: list[int], held: int) -> _Checkpoint:
        """The checkpoint a pass over `order` starts from and keeps up to date: after its first `held` frames,
        if an earlier pass `pass_id` kept its memory there, else empty (the pass starts at the beginning)."""
        earlier = self._checkpoints.pop(pass_id, None)
        checkpoint = _Checkpoint(order, OrderedDict())
        if held and earlier is not None and held in earlier.banks and earlier.order[:held] == order[:held]:
            checkpoint.banks[held] = earlier.banks[held]
        self._checkpoints[pass_id] = checkpoint
        while len(self._checkpoints) > CHECKPOINTS:
            self._checkpoints.popitem(last=False)
        return checkpoint

    def _pass(self, model: STM, frames: FrameSource, start: int, seed: np.ndarray, order: list[int],
              annotations: Annotations, obj_ids: list[int], geo: Geometry,
              cancel: threading.Event | None, checkpoint: _Checkpoint) -> Iterator[FrameResult]:
        """One pass of `model` over `order` at the working size of `geo`, from where `checkpoint` got to: the
        network on the engine's network thread, up to RUN_AHEAD frames ahead of the caller, who stores the
        results meanwhile."""
        pending = self._propagate(model, frames, start, seed, order, annotations, obj_ids, geo, cancel, checkpoint)
        for result in run_ahead(pending, RUN_AHEAD):
            yield result.result()

    def _propagate(self, model: STM, frames: FrameSource, start: int, seed: np.ndarray, order: list[int],
                   annotations: Annotations, obj_ids: list[int], geo: Geometry,
                   cancel: threading.Event | None, checkpoint: _Checkpoint) -> Generator[PendingResult, None, None]:
        """The loop of `_pass` (run on the network thread): each frame's result is yielded as soon as its work is
        queued, and the frame's memory encoding is queued after it; the memory after each frame goes into
        `checkpoint`, and a pass starts from the memory it holds."""
        s = self.settings
        net = self._net(model)
        identity = obj_ids == list(range(1, len(obj_ids) + 1))
        lut = None if identity else torch.tensor([0] + obj_ids, dtype=torch.uint8, device=self.device)
        finish = partial(_finish, geo=geo, lut=lut)
        finish_key = ("finish", geo, tuple(obj_ids))
        # the look-ahead thread prepares the next frame while this one is read and decoded: on the CPU it also
        # encodes it (using cores the network's small layers leave idle); on a GPU it only decodes the image,
        # since a CUDA graph capture here must not meet CUDA calls from another thread
        on_cpu = self.device.type == "cpu"
        with cores_shared(on_cpu and geo.work[0] * geo.work[1] <= SHARED_CORES_MAX_PIXELS) as ahead_threads, \
                ThreadPoolExecutor(1, thread_name_prefix="stm-query") as ahead:
            job = partial(self._encode_ahead, model, frames, geo, ahead_threads) if on_cpu else frames.__getitem__
            def encoded(future: Future, index: int) -> tuple[torch.Tensor, QueryFeatures]:
                if on_cpu:
                    return future.result()
                with self._compute():
                    return self._encode(model, frames, geo, index, future.result())
            done, bank = next(reversed(checkpoint.banks.items()), (0, None))
            upcoming = ahead.submit(job, order[done]) if done < len(order) else None
            if bank is not None:
                bank = bank.copy()
            else:
                bank = MemoryBank(s.max_memory)
                with self._compute():
                    for idx in annotated_memory(sorted(annotations), start, s.max_memory):
                        bank.add_permanent(idx, *self._annotation_memory(model, frames, idx, annotations, obj_ids,
                                                                         geo))
                    if start not in annotations:
                        probs = labels_to_probs(seed, obj_ids, geo, self.device)
                        bank.set_temporary(start, *net.memorize(self._frame(frames, start, geo), probs))
            for n, index in enumerate(order[done:], done + 1):
                if cancel is not None and cancel.is_set():
                    return
                frame, query = encoded(upcoming, index)  # type: ignore[arg-type]
                if n < len(order):  # the next frame's preparation overlaps this frame's read and decode
                    upcoming = ahead.submit(job, order[n])
                with self._compute():
                    mem_key, mem_value = bank.stacked()
                    self.memory_frames = mem_key.shape[2]
                    fg = net.segment(query, mem_key, mem_value)
                    memorised, *outputs = net.call(finish_key, finish, [fg]) if isinstance(net, GraphedNetwork) \
                        else finish(fg)
                yield PendingResult(index, FrameTensors(*outputs))
                if n < len(order):
                    with self._compute():
                        key, value = net.memorize(frame, memorised)
                    bank.set_temporary(index, key, value)
                    if n % s.mem_every == 0:
                        bank.add_propagated(index, key, value)
                checkpoint.keep(n, bank)

    def _encode(self, model: STM, frames: FrameSource, geo: Geometry, index: int,
                image: np.ndarray) -> tuple[torch.Tensor, QueryFeatures]:
        """Frame `index` (`image`) as a tensor and its query features."""
        frame = frame_tensor(image, geo, self.device, self._channels_last)
        return frame, self._query(model, frames, index, geo, frame)

    def _encode_ahead(self, model: STM, frames: FrameSource, geo: Geometry, threads: int,
                      index: int) -> tuple[torch.Tensor, QueryFeatures]:
        """`_encode` on the CPU's look-ahead thread. Overlapping it with the previous frame's read, decode and
        memorisation makes a frame at 144-240 px 1.3-1.9x faster on 2 cores in bf16 (the network's small layers
        leave cores idle); at 480 px, and in fp32 on an AVX2 CPU, it is even. Autocast, inference mode, the
        intra-op thread count and flushing denormals are per thread, so they are set here."""
        prepare_compute_thread(threads)
        with self._compute():
            return self._encode(model, frames, geo, index, frames[index])

    def take_adaptations(self, other: "Propagator") -> None:
        """Take `other`'s loaded network and adaptations where both engines make them alike (same weights,
        device, number format and adaptation settings): new memory settings then keep the minutes an adaptation
        takes on a CPU (QA pass 22: lowering the memory cap, as the out-of-memory message advises, redid all
        60 steps)."""
        self._saved = other._saved  # checked against these settings when taken
        if other._model is None or any(getattr(self.settings, f) != getattr(other.settings, f)
                                       for f in ADAPTATION_SETTINGS):
            return
        self._model, self._placed, self._device = other._model, other._placed, other._device
        self._weights_identity = other._weights_identity
        self._folded, self._adaptations, self._adapted = other._folded, list(other._adaptations), other._adapted
        for net in [self._folded, *(n for a in self._adaptations for n in (a.folded, a.trainable))]:
            if net is not None:  # copies made with the other engine's setting (QA pass 23: a correction went on
                net.top_k = self.settings.top_k  # from the trainable one, with its top_k)

    # ---- cache control --------------------------------------------------------------------------------
    def forget_frame(self, index: int) -> None:
        """An annotation changed: its cached memory encodings are stale."""
        self._memory_cache.discard(lambda k: k[2] == index)  # type: ignore[index]

    def forget_all(self) -> None:
        """Free every cache and adaptation (and the GPU's cached blocks); the next run recomputes what it
        needs."""
        self._adapted = None
        self._adaptations.clear()
        self._saved = None
        self.forget_features()

    def forget_features(self) -> None:
        """Free the cached encoder features, kept passes and the GPU's cached blocks (the network and its
        adaptations stay: they cost minutes to make again)."""
        self._checkpoints.clear()  # their memory came from the networks and caches dropped here
        self._query_cache.clear()
        self._memory_cache.clear()
        self._graphed.clear()
        if self._device is not None and self._device.type == "cuda":
            with CAPTURE_LOCK:  # may run on the GUI thread while a run captures a graph
                torch.cuda.empty_cache()

    def memory_status(self) -> dict[str, float | int | str]:
        """What the status bar shows; never loads the network (QA pass 105: asked while the warm-up thread loaded
        it, the GUI thread waited 1.6-3.4 s for the load lock)."""
        model = self._model
        steps = self.settings.adapt_steps
        adapted = bool(steps) if steps is not None else model is not None and bool(model.recommended_adapt_height)
        status: dict[str, float | int | str] = {
            "device": self.device_name,
            "precision": describe_precision(self.device, self.settings.fast),
            "process_height": self._height(adapted) or 0,
            "model": model.cfg.name if model is not None else "",  # "" until loaded
            "memory_frames": self.memory_frames,
            "cached_frames": len(self._query_cache),
            "cache_bytes": self._query_cache.nbytes + self._memory_cache.nbytes,
        }
        if self.device.type == "cuda":
            status["gpu_bytes"] = torch.cuda.memory_allocated(self.device)
            status["gpu_total_bytes"] = torch.cuda.get_device_properties(self.device).total_memory
        return status
