"""Test-time adaptation: clips from one annotated frame, fine-tuning that fits it, and the engine option."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import torch

from stm_core.model.config import STM_SMALL
from stm_core.model.stm import STM
from stm_core.train.adapt import StillFrameClips, adapt
from stm_core.train.loss import clip_loss

from .engine_helpers import on_new_thread, square_mask, surviving_denormals, tiny_session, write_clip


def _frame() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
    labels = np.zeros((64, 96), np.uint8)
    labels[10:30, 10:40] = 1
    labels[35:60, 50:90] = 2
    image[labels == 1] = (230, 30, 30)
    image[labels == 2] = (30, 30, 230)
    return image, labels


def test_still_frame_clips_are_warped_copies_with_every_object():
    image, labels = _frame()
    clip = StillFrameClips([image], [labels]).sample(np.random.default_rng(3))
    assert clip.frames.shape == (3, 3, 64, 96) and clip.labels.shape == (3, 64, 96)
    assert clip.num_objects == 2 and set(np.unique(clip.labels[0])) == {0, 1, 2}
    assert not np.array_equal(clip.labels[0], clip.labels[1])  # the frames move
    assert 0.0 <= clip.frames.min() and clip.frames.max() <= 1.0


def test_adapt_fits_the_annotated_frame_and_leaves_the_model_alone():
    torch.manual_seed(0)
    image, labels = _frame()
    model = STM(STM_SMALL).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clips = StillFrameClips([image], [labels])
    rng = np.random.default_rng(5)
    batch = [clips.sample(rng) for _ in range(2)]
    frames = torch.from_numpy(np.stack([c.frames for c in batch]))
    labs = torch.from_numpy(np.stack([c.labels for c in batch])).long()

    def loss_of(m: STM) -> float:
        with torch.no_grad():
            return clip_loss(m, frames, labs, [2, 2])[0].item()
    with torch.no_grad():  # adaptation trains even when called from inference code
        tuned = adapt(model, [image], [labels], steps=8, lr=1e-3, batch_size=2)
    assert loss_of(tuned) < loss_of(model)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert not tuned.training


def test_engine_adapts_once_per_set_of_annotations(tmp_path, monkeypatch):
    import stm_core.train.adapt as adapt_module

    calls = []
    real = adapt_module.adapt
    monkeypatch.setattr(adapt_module, "adapt", lambda *a, **k: calls.append(1) or real(*a, **k))
    session = tiny_session(write_clip(tmp_path / "clip"), adapt_steps=2)
    session.set_annotation(0, square_mask())
    steps: list[tuple[int, int]] = []
    first = session.propagate(0, "forward", adapting=lambda done, total: steps.append((done, total)))
    assert steps == [(1, 2), (2, 2)]
    assert 0 < first.adapt_seconds < first.seconds and first.fps > len(first.frames) / first.seconds
    again = session.propagate(0, "forward", adapting=lambda done, total: steps.append((done, total)))
    assert len(calls) == 1 and len(steps) == 2 and all(session.has_result(i) for i in range(1, 6))
    assert again.adapt_seconds == 0
    session.set_annotation(3, square_mask(t=3))
    steps.clear()
    session.propagate(3, "forward", adapting=lambda done, total: steps.append((done, total)))
    assert len(calls) == 2 and steps[-1] == (1, 1)  # a correction continues from the last adaptation, shorter
    session.set_annotation(0, square_mask(t=1))
    session.remove_annotation(3)
    steps.clear()
    session.propagate(0, "forward", adapting=lambda done, total: steps.append((done, total)))
    assert len(calls) == 3 and steps[-1] == (2, 2)  # nothing kept from before: adapt from the loaded weights


def test_objects_entering_mid_video_continue_the_adaptation_shorter(tmp_path):
    """QA pass 30: every object entering mid-video started the adaptation afresh with all its steps (the judo
    clip's four masks: ten minutes on two cores); the weights do not depend on which objects are tracked, so
    the adaptation goes on from the last one, as after a correction."""
    session = tiny_session(write_clip(tmp_path / "clip"), adapt_steps=4)
    session.set_annotation(0, square_mask())
    entering = np.zeros((48, 80), np.uint8)
    entering[30:44, 50:70] = 2
    assert not session.add_entering(3, entering)
    steps: list[tuple[int, int]] = []
    report = session.propagate(0, "forward", adapting=lambda done, total: steps.append((done, total)))
    assert session.object_ids() == [1, 2] and all(session.has_result(i) for i in range(1, 6))
    assert [total for _, total in steps] == [4] * 4 + [2] * 2 and report.stopped_at is None


def test_new_memory_settings_keep_the_adaptation(tmp_path):
    """QA pass 22: a session rebuilt with a lower memory cap (as the out-of-memory message advises) adapted all
    over again, minutes on a CPU; another adaptation setting does adapt again."""
    from dataclasses import replace

    from stm_core.session import AnnotationSession

    session = tiny_session(write_clip(tmp_path / "clip"), adapt_steps=2)
    session.set_annotation(0, square_mask())
    session.propagate(0, "forward")
    for change, adapts in ((dict(max_memory=3, top_k=4), False), (dict(adapt_lr=1e-3), True)):
        rebuilt = AnnotationSession(session.frames, replace(session.settings, **change))
        rebuilt.copy_masks_from(session)
        steps: list[tuple[int, int]] = []
        rebuilt.propagate(0, "forward", adapting=lambda done, total: steps.append((done, total)))
        assert bool(steps) is adapts, change
        engine = rebuilt._propagator  # the networks taken over follow the new engine's top_k
        assert engine._plain().top_k == engine._adapted.folded.top_k == engine._adapted.trainable.top_k \
            == rebuilt.settings.top_k


def test_adaptation_runs_on_the_network_thread_with_denormals_flushed(tmp_path, monkeypatch):
    """The application propagates from a worker thread that never flushed denormals; an fp32 adaptation there
    ran 1.7x slower on an Intel CPU (BENCHMARKS.md), so it runs on the network thread, set up for that."""

    import stm_core.train.adapt as adapt_module

    seen = []
    real = adapt_module.adapt

    def recording(*args, **kwargs):
        seen.append((threading.current_thread().name, surviving_denormals()))
        return real(*args, **kwargs)
    monkeypatch.setattr(adapt_module, "adapt", recording)
    session = tiny_session(write_clip(tmp_path / "clip"), adapt_steps=1)
    session.set_annotation(0, square_mask())
    worker = threading.Thread(target=lambda: session.propagate(0, "forward"), name="app-worker")
    worker.start()
    worker.join()
    flushing = on_new_thread(lambda: torch.set_flush_denormal(True))  # whether this CPU can flush denormals
    assert seen == [("stm-network", 0 if flushing else seen[0][1])] and session.has_result(5)


def test_undoing_a_correction_gives_back_the_masks_from_before_it(tmp_path, monkeypatch):
    """Fifth CLI QA pass: after remove_annotation every mask differed from before the correction, as the
    network kept its fine-tuning on the removed mask."""
    import stm_core.train.adapt as adapt_module

    calls = []
    real = adapt_module.adapt
    monkeypatch.setattr(adapt_module, "adapt", lambda *a, **k: calls.append(1) or real(*a, **k))
    session = tiny_session(write_clip(tmp_path / "clip", frames=8), adapt_steps=4, preview_frames=3)
    session.set_annotation(0, square_mask())
    session.propagate(0, "forward")
    before = [session.snapshot(i).soft()[1] for i in range(1, 8)]
    session.set_annotation(4, square_mask(t=4, label=2))  # a correction, adapted to, then undone
    session.propagate(4, "forward")
    assert any(not np.array_equal(session.snapshot(i).soft()[1], b) for i, b in zip(range(5, 8), before[4:]))
    session.remove_annotation(4)
    previewed: list[int] = []
    session.propagate(0, "forward", previewed=previewed.append)
    assert len(calls) == 2 and previewed == []  # the earlier adaptation, ready at once: no preview needed
    assert all(np.array_equal(session.snapshot(i).soft()[1], b) for i, b in zip(range(1, 8), before))


def test_a_preview_shows_frames_before_adapting_and_the_adapted_pass_replaces_them(tmp_path):
    session = tiny_session(write_clip(tmp_path / "clip"), adapt_steps=2, preview_frames=3)
    session.set_annotation(0, square_mask())
    events: list[tuple] = []
    report = session.propagate(0, "forward", progress=lambda i, done, total: events.append(("frame", i)),
                               adapting=lambda done, steps: events.append(("adapt", done)),
                               previewed=lambda i: events.append(("preview", i)))
    assert events == [("preview", 1), ("preview", 2), ("preview", 3), ("adapt", 1), ("adapt", 2),
                      ("frame", 1), ("frame", 2), ("frame", 3), ("frame", 4), ("frame", 5)]
    assert report.previewed == [1, 2, 3] and report.frames == [1, 2, 3, 4, 5]
    assert report.first_frame_seconds < report.adapt_seconds
    session.set_annotation(3, square_mask(t=3))
    events.clear()
    again = session.propagate(3, "forward", adapting=lambda done, steps: events.append(("adapt", done)),
                              previewed=lambda i: events.append(("preview", i)))
    # a correction's preview runs the previous adaptation with the corrected frame in memory, replacing results
    assert events == [("preview", 4), ("preview", 5), ("adapt", 1)] and again.frames == [4, 5]


def test_a_result_a_preview_replaced_comes_back_until_the_adapted_pass_replaces_it(tmp_path):
    """QA passes 22b and 23: a correction's preview replaced the results after it; cancelled during its
    adaptation and the correction undone, those results were lost and had to be propagated again."""
    session = tiny_session(write_clip(tmp_path / "clip"), adapt_steps=2, preview_frames=2)
    session.set_annotation(0, square_mask())
    session.propagate(0, "forward")
    before = {i: (session.labels(i), session.snapshot(i).soft()) for i in range(1, 6)}
    session.set_annotation(3, square_mask(t=3))  # a correction
    cancel = threading.Event()
    report = session.propagate(3, "forward", cancel=cancel, previewed=lambda i: i == 5 and cancel.set())
    assert report.previewed == [4, 5] and report.frames == [] and report.cancelled
    session.remove_annotation(3)  # undone
    assert [session.restore_replaced(i) for i in (2, 4, 5)] == [False, True, True]
    assert not session.restore_replaced(4)  # given back once
    for i in (4, 5):
        labels, (ids, soft) = session.labels(i), session.snapshot(i).soft()
        assert np.array_equal(labels, before[i][0]) and ids == before[i][1][0] and np.array_equal(soft, before[i][1][1])
    session.set_annotation(3, square_mask(t=3))
    session.propagate(3, "forward")  # its preview, then the adapted pass, which replaces the preview
    assert not session.restore_replaced(4) and not session.restore_replaced(5)


def test_an_unadapted_preview_never_replaces_a_result(tmp_path):
    session = tiny_session(write_clip(tmp_path / "clip"), adapt_steps=1, preview_frames=5)
    session.set_annotation(0, square_mask())
    session.set_result(2, square_mask(t=2, label=1))
    seen: list[int] = []
    session.propagate(0, "forward", previewed=seen.append)
    assert seen == [1, 3, 4, 5]  # frame 2 kept its result


def test_a_cancelled_preview_leaves_no_adaptation_behind(tmp_path):

    session = tiny_session(write_clip(tmp_path / "clip"), adapt_steps=2, preview_frames=3)
    session.set_annotation(0, square_mask())
    cancel = threading.Event()
    report = session.propagate(0, "forward", cancel=cancel, previewed=lambda i: cancel.set())
    assert report.cancelled and report.previewed == [1] and not report.frames
    assert session.has_result(1) and not session.has_result(2)
    steps: list[int] = []
    session.propagate(0, "forward", adapting=lambda done, total: steps.append(done))
    assert steps == [1, 2]  # adaptation was still owed


def test_weights_recommend_one_height_for_plain_and_another_for_adapted_propagation(tmp_path):
    from stm_core.engine.propagator import Propagator
    from stm_core.engine.settings import EngineSettings
    from stm_core.model.checkpoint import save_weights

    weights = tmp_path / "w.pt"
    save_weights(STM(STM_SMALL), weights, {"step": 1, "process_height": 144, "adapt_process_height": 240})
    heights = {}
    for steps in (0, 20):
        propagator = Propagator(EngineSettings(weights=str(weights), device="cpu", adapt_steps=steps))
        propagator.model  # loading reads the recommendations
        heights[steps] = propagator.process_height
    assert heights == {0: 144, 20: 240}
    chosen = Propagator(EngineSettings(weights=str(weights), device="cpu", adapt_steps=20, process_height=360))
    chosen.model
    assert chosen.process_height == 360  # the user's choice wins


def test_unset_adaptation_follows_the_weights(tmp_path):
    """None adapts as the weights recommend: the shipped kind (meta names an adapted height) the recommended
    steps, others none."""
    from stm_core.engine.propagator import Propagator
    from stm_core.engine.settings import RECOMMENDED_ADAPT_STEPS, EngineSettings
    from stm_core.model.checkpoint import save_weights

    recommending, plain = tmp_path / "r.pt", tmp_path / "p.pt"
    save_weights(STM(STM_SMALL), recommending, {"step": 1, "process_height": 144, "adapt_process_height": 240})
    save_weights(STM(STM_SMALL), plain, {"step": 1})
    steps = {w.name: Propagator(EngineSettings(weights=str(w), device="cpu", adapt_steps=None)).adapt_steps
             for w in (recommending, plain)}
    assert steps == {"r.pt": RECOMMENDED_ADAPT_STEPS, "p.pt": 0}
    assert Propagator(EngineSettings(weights=str(recommending), device="cpu", adapt_steps=0)).adapt_steps == 0


def test_no_adaptation_without_frames_to_propagate_or_on_frames_too_small(tmp_path, monkeypatch):
    """Adapting costs seconds to minutes: not when every frame is annotated; frames under 32 px (too small for
    its crops, which crashed with a traceback) propagate unadapted."""
    from stm_core.engine import propagator

    calls = []
    monkeypatch.setattr("stm_core.train.adapt.adapt", lambda *a, **k: calls.append(1) or a[0])
    session = tiny_session(write_clip(tmp_path / "one", frames=1), adapt_steps=2)
    session.set_annotation(0, square_mask())
    assert session.propagate(0, "forward").frames == [] and not calls
    # a sliver: frames under 128 px are scaled up, unless that takes the longer side past 1024
    small = tiny_session(write_clip(tmp_path / "small", frames=3, size=(8, 1100)), adapt_steps=2, process_height=0)
    dot = np.zeros((8, 1100), np.uint8)
    dot[2:5, 2:5] = 1
    small.set_annotation(0, dot)
    assert small.propagate(0, "forward").frames == [1, 2] and not calls
    assert propagator.MIN_ADAPT_SIZE == 32


def test_clips_track_only_the_objects_of_their_first_frame():
    """Found on the judo clip with the default adaptation: a warp pushed object 3 out of a clip's first frame
    but not out of a later one, and the loss (sized by the first frame's objects) failed with "Target 3 is out
    of bounds", ending the CLI run after frame 8."""
    from stm_core.train.adapt import StillFrameClips

    labels = np.zeros((64, 96), np.uint8)
    labels[20:40, 30:60] = 1
    labels[0:64, 0:4] = 2  # thin strips on the borders: warps move them in and out of view
    labels[0:64, 92:96] = 3
    clips = StillFrameClips([np.full((64, 96, 3), 128, np.uint8)], [labels])
    rng = np.random.default_rng(0)
    for _ in range(60):
        clip = clips.sample(rng)
        first = set(np.unique(clip.labels[0]).tolist())
        assert all(set(np.unique(lab).tolist()) <= first for lab in clip.labels[1:])
        assert clip.num_objects == max(first)


def test_adaptation_computes_in_fp32_when_fast_is_off(tmp_path, monkeypatch):
    """QA pass 80: `--no-fast` ("plain fp32") still adapted the weights in bf16."""
    import stm_core.engine.hardware as hardware
    import stm_core.train.adapt as adapt_module

    monkeypatch.setattr(hardware, "autocast_dtype", lambda device: torch.bfloat16)  # as where bf16 is fast
    seen: set[tuple[bool, bool]] = set()
    real = adapt_module.clip_loss

    def clip_loss(*args, **kwargs):
        seen.add((fast, torch.is_autocast_enabled("cpu")))
        return real(*args, **kwargs)
    monkeypatch.setattr(adapt_module, "clip_loss", clip_loss)
    for fast in (True, False):
        session = tiny_session(write_clip(tmp_path / f"clip{fast}"), adapt_steps=1, fast=fast)
        session.set_annotation(0, square_mask())
        session.propagate(0, "forward")
    assert seen == {(True, True), (False, False)}


def test_an_adaptation_kept_with_the_work_is_taken_back_by_a_later_session(tmp_path):
    """A restarted session adapted again (minutes on a CPU) and gave other masks than before. The adaptation
    kept as bytes is taken back where it fits: no steps, the same masks; a correction continues from it."""
    clip = write_clip(tmp_path / "clip")
    first = tiny_session(clip, adapt_steps=2)
    first.set_annotation(0, square_mask())
    first.propagate(0, "forward")
    kept = first.adaptation()
    assert isinstance(kept, bytes) and tiny_session(clip, adapt_steps=2).adaptation() is None

    def reopened(data: bytes, **settings) -> tuple[object, list]:
        session = tiny_session(clip, **{"adapt_steps": 2, **settings})
        session.set_annotation(0, square_mask())
        session.restore_adaptation(data)
        steps: list[tuple[int, int]] = []
        session.propagate(0, "forward", adapting=lambda *step: steps.append(step))
        return session, steps
    again, steps = reopened(kept)
    assert steps == [] and all(np.array_equal(again.labels(i), first.labels(i)) for i in range(1, 6))
    again.set_annotation(3, square_mask(t=3))  # a correction continues from it: half the steps
    steps.clear()
    again.propagate(3, "forward", adapting=lambda *step: steps.append(step))
    assert steps == [(1, 1)]
    middle = len(kept) // 2  # QA pass 84: a byte changed in the weights was used, and the masks came out empty
    flipped = kept[:middle] + bytes([kept[middle] ^ 0xFF]) + kept[middle + 1:]
    for data, settings in ((kept, {"adapt_steps": 3}), (kept, {"adapt_lr": 1e-3}), (kept[:1000], {}),
                           (b"not an adaptation", {}), (flipped, {})):  # made otherwise, or damaged: adapted anew
        _, steps = reopened(data, **settings)
        assert steps and steps[-1][0] == steps[-1][1] > 1, settings
    other = write_clip(tmp_path / "other")  # QA pass 84: another video's, with the same mask, was used
    first_frame = other / "00000.png"
    cv2.imwrite(str(first_frame), 255 - cv2.imread(str(first_frame)))
    elsewhere = tiny_session(other, adapt_steps=2)
    elsewhere.set_annotation(0, square_mask())
    elsewhere.restore_adaptation(kept)
    steps.clear()
    elsewhere.propagate(0, "forward", adapting=lambda *step: steps.append(step))
    assert steps[-1] == (2, 2)


def test_an_adaptation_is_of_the_weights_as_they_were_when_loaded(tmp_path):
    """QA pass 85: the weights file was stamped on the adaptation when it was saved, so a file trained again in
    place meanwhile made the old network's adaptation look like one of the new weights."""
    import os

    from stm_core.model.checkpoint import save_weights

    clip, weights = write_clip(tmp_path / "clip"), tmp_path / "w.pt"
    torch.manual_seed(0)
    save_weights(STM(STM_SMALL), weights, {})
    from stm_core.engine.settings import EngineSettings
    from stm_core.session import AnnotationSession

    def session() -> AnnotationSession:
        return AnnotationSession.open(clip, EngineSettings(device="cpu", adapt_steps=1, weights=str(weights)))
    first = session()
    first.set_annotation(0, square_mask())
    first.propagate(0, "forward")
    torch.manual_seed(1)
    save_weights(STM(STM_SMALL), weights, {})  # trained again in place
    os.utime(weights, ns=(os.stat(weights).st_atime_ns, os.stat(weights).st_mtime_ns + 10**9))
    kept = first.adaptation()
    again = session()
    again.set_annotation(0, square_mask())
    again.restore_adaptation(kept)
    steps: list[tuple[int, int]] = []
    again.propagate(0, "forward", adapting=lambda *step: steps.append(step))
    assert steps == [(1, 1)]  # adapted anew: the kept one is of the old weights
