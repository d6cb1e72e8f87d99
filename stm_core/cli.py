"""Command line: `python -m stm_core propagate|evaluate|train|bench ...`.

Bad input exits with status 2 and one line on stderr (no traceback); outputs written before an error are
complete files only (every write is atomic). Ctrl+C exits with 130 after the frame in flight.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .engine.settings import RECOMMENDED_ADAPT_STEPS, EngineSettings
from .errors import InputError, OutOfMemoryError, SettingsError, StmError
from .io import locks
from .io.frames import natural_key
from .model.config import CONFIGS, MIN_PROCESS_HEIGHT
from .train.config import TrainConfig

if TYPE_CHECKING:
    import numpy as np

    from .session import AnnotationSession, Direction


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", help="weights file (default: the shipped stm-small model)")
    p.add_argument("--model", choices=list(CONFIGS),
                   help="stm-small (default: the shipped weights) or stm-r50 (the official STM_weights.pth); "
                        "without it a weights file loads as the model it fits, so the official file needs none")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the network runs (default: auto, a CUDA GPU if there is one)")
    p.add_argument("--mem-every", type=int, default=5,
                   help="every N-th propagated frame joins memory (default: %(default)s)")
    p.add_argument("--max-memory", type=int, default=20,
                   help="cap on the memory frames a step reads besides the previous frame; past it the oldest "
                        "propagated one leaves, and of more annotated frames than N a run keeps the first and those "
                        "nearest its start (default: %(default)s)")
    p.add_argument("--process-height", type=int, default=None,
                   help="run the network at this frame height (a portrait video's width) and upsample the masks; "
                        "0 = source size (frames under 128 px are scaled up to 128, or to a smaller height set); "
                        "default: the height the weights recommend (their model card)")
    p.add_argument("--top-k", type=int, default=None,
                   help="read only the k strongest memory matches per position (default: all, as the paper)")
    p.add_argument("--adapt-steps", type=int, default=None,
                   help="test-time adaptation: fine-tune a copy of the network on the annotated frames for N "
                        f"steps first (0: off, faster, less accurate; default: {RECOMMENDED_ADAPT_STEPS} for weights "
                        "that recommend it, like the shipped ones, else off)")
    p.add_argument("--no-fast", action="store_true",
                   help="plain fp32 NCHW, instead of channels_last and bf16 autocast where the hardware computes bf16")


def _settings(a: argparse.Namespace) -> EngineSettings:
    try:
        return EngineSettings(model=a.model or "stm-small", weights=a.weights, device=a.device,
                              mem_every=a.mem_every, max_memory=a.max_memory, process_height=a.process_height,
                              fast=not a.no_fast, top_k=a.top_k, adapt_steps=a.adapt_steps)
    except SettingsError as e:  # named as the option the user typed
        raise StmError(f"--{e.field.replace('_', '-')} {e.requirement}") from None


def _check_output(output: Path, *inputs: Path) -> None:
    """Masks must never overwrite the frames or the annotations they come from."""
    if output.exists() and not output.is_dir():
        raise InputError(f"--output {output} is a file, not a folder")
    if output.is_symlink() and not output.exists():  # QA pass 45: "[Errno 17] File exists" for no file to see
        raise InputError(f"--output {output} is a link to {os.readlink(output)}, which does not exist")
    under = next((p for p in output.absolute().parents if p.exists() and not p.is_dir()), None)
    if under is not None:  # QA pass 25: "[Errno 20] Not a directory"
        raise InputError(f"--output {output} would be inside {under}, which is a file, not a folder")
    for source in inputs:
        if source.is_dir() and output.resolve() == source.resolve():
            raise InputError(f"--output {output} is an input folder: its files would be overwritten by masks")


def cmd_propagate(a: argparse.Namespace) -> int:
    from .model.checkpoint import DEFAULT_WEIGHTS

    for option, value in (("the frames", a.images), ("--annotations", a.annotations), ("--output", a.output)):
        if not value.strip():  # Path("") is the working folder: an unset shell variable would write there
            raise InputError(f"{option} is empty")
    out = Path(a.output)
    _check_output(out, Path(a.images), Path(a.annotations))
    _check_json_target(a.coco, "--coco", created=out,  # it may go into the output folder made below
                       inputs=(a.images, a.annotations, a.weights or str(DEFAULT_WEIGHTS)))
    session = _loaded_session(a)
    complete = _annotated(session, a)
    written = _propagated_into(out, session, complete, a)
    if a.coco:
        _write_coco(Path(a.coco), session, Path(a.annotations), sorted(written))
    return 0


def _loaded_session(a: argparse.Namespace) -> "AnnotationSession":
    """The video's session with its network loaded, its frames' sizes checked before any work."""
    from .session import AnnotationSession

    session = AnnotationSession.open(a.images, _settings(a))
    session.check_frames()  # before the work, not where the run gets to the frame (QA pass 69)
    session.prepare()
    status = session.memory_status()
    if a.process_height and a.process_height > min(session.frame_size):  # QA pass 18: said nothing
        warnings.warn(f"--process-height {a.process_height} is more than the frames' {min(session.frame_size)} px: "
                      f"the network works at {status['working_height']} px (frames are scaled up only where under "
                      "128 px, to 128 px or a smaller height asked for)")
    if a.model and status["model"] != a.model:
        raise StmError(f"--model {a.model} asked for, but {a.weights} holds a {status['model']} network")
    return session


def _annotated(session: "AnnotationSession", a: argparse.Namespace) -> dict[int, "np.ndarray"]:
    """Give `session` the masks of `--annotations`: whole-frame ones as annotations (returned, {frame: labels}),
    those that add objects to a frame as objects entering there."""
    from .io.masks import read_mask_dir, split_annotations

    complete, adding = split_annotations(read_mask_dir(a.annotations, session.frame_names, session.frame_size))
    for index, labels in complete.items():
        session.set_annotation(index, labels)
    if not session.object_ids():
        raise StmError(f"the masks in {a.annotations} contain no object (all background)")
    if a.direction == "backward" and adding:  # QA pass 25: these masks went unwritten, and a later whole-frame
        # mask's objects were tracked back to before they enter, while a warning said they were not tracked
        raise InputError(f"the masks of frames {', '.join(session.frame_names[i] for i in adding)} add objects "
                         "that enter there, tracked from there on: that needs a forward run; use --direction "
                         "both or forward, or give whole-frame masks")
    for index, labels in adding.items():  # objects entering there join what is propagated to that frame
        session.add_entering(index, labels)
    if len(complete) == session.num_frames:
        warnings.warn(f"every frame of {a.images} has a mask in {a.annotations}: nothing to propagate, the masks "
                      "were copied")
    return complete


def _planned_runs(complete: dict[int, "np.ndarray"], direction: str) -> list[tuple[int, "Direction"]]:
    """The runs `--direction` asks for: forward from each mask; backward from each mask to the one before it
    (the first to the video's start); both: back from the first mask, then forward from each."""
    runs: list[tuple[int, Direction]] = []
    if direction == "both" and min(complete) > 0:
        runs.append((min(complete), "backward"))
    elif direction == "backward":
        runs += [(i, "backward") for i in sorted(complete, reverse=True)]
    if direction != "backward":
        runs += [(i, "forward") for i in sorted(complete)]
    return runs


def _propagated_into(out: Path, session: "AnnotationSession", complete: dict[int, "np.ndarray"],
                     a: argparse.Namespace) -> set[int]:
    """Run the planned propagation, writing each frame's mask into `out` as it comes; the frames written."""
    from tqdm import tqdm

    from .io.masks import write_mask

    names, first, last = session.frame_names, min(complete), max(complete)
    engine = session.memory_status()  # where it runs and in which number format (bf16 only where it is fast)
    desc = f"propagating on {engine['device']} ({engine['precision']})"
    written: set[int] = set()  # the frames whose mask is on disk (QA pass 79: an unwritten one counted)
    lo, hi = (first if a.direction == "forward" else 0), (last + 1 if a.direction == "backward"
                                                          else session.num_frames)
    left = range(last + 1, session.num_frames) if a.direction == "backward" else \
        range(first) if a.direction == "forward" else range(0)
    if left:  # seventh CLI QA pass: backward from a mask on the first frame did nothing, exit 0, no word
        side = "after the last" if a.direction == "backward" else "before the first"
        warnings.warn(f"--direction {a.direction} leaves {len(left)} frame{'s' * (len(left) != 1)} {side} mask "
                      "without masks "
                      f"({names[left[0]]}..{names[left[-1]]})")
    # smoothing=0: the rate counts from the end of adaptation (start_t moves), not from a first frame that
    # waited minutes for it
    # no bar where stderr is no terminal (QA pass 106: a log file got its carriage returns, warnings glued on):
    # what it would say first, on a line of its own
    if not a.quiet and not sys.stderr.isatty():
        print(desc, file=sys.stderr)
    with tqdm(total=hi - lo - len(complete), unit="frame", desc=desc, disable=True if a.quiet else None,
              smoothing=0) as bar, _writing_into(out, names, written) as target:
        for index in session.annotated_frames():
            write_mask(target / f"{names[index]}.png", session.labels(index))
            written.add(index)

        def progress(index: int, done: int, total: int) -> None:
            bar.set_description_str(desc, refresh=False)
            write_mask(target / f"{names[index]}.png", session.labels(index))
            if index not in written:
                written.add(index)
                bar.update(1)

        started = [time.time()]

        def adapting(done: int, steps: int) -> None:
            bar.set_description_str(f"adapting to the video {done}/{steps}")
            if done == steps and not bar.disable:  # the rate and time left count from here, not from before
                bar.start_t += time.time() - started[0]

        try:
            for start, direction in _planned_runs(complete, a.direction):
                started[0] = time.time()
                session.propagate(start, direction, progress=progress, adapting=adapting,
                                  entered=lambda index: progress(index, 0, 0),
                                  return_runs=a.direction == "both")  # one way means one way between masks too
        except KeyboardInterrupt:
            if a.coco:  # QA pass 18: "interrupted" said nothing of it
                warnings.warn(f"--coco {a.coco} was not written: the run was interrupted")
            raise
    return written


def _write_coco(path: Path, session: "AnnotationSession", annotations: Path, frames: list[int]) -> None:
    """The masks written, as one COCO file (frames without a mask are left out: no mask is not "no object")."""
    import numpy as np

    from .io.coco import CocoDocument, object_names

    waiting = {int(o) for i in session.entering_frames() for o in np.unique(session.entering_labels(i)) if o}
    objects = object_names(annotations, sorted(set(session.object_ids()) | waiting))  # as the PNGs show them
    coco = CocoDocument(objects, session.frame_size, f"{session.source_path.name}: masks propagated by STM")
    for index in frames:
        coco.add_frame(index, session.frame_file_name(index), session.labels(index))
    coco.write(path)


@contextmanager
def _writing_into(out: Path, names: list[str], written: set[int]) -> Iterator[Path]:
    """The folder the run writes its masks into: `out`, or, where `out` holds an earlier run's masks, a new folder
    beside it whose masks replace those once the run has ended well. A run that fails or is stopped then leaves
    `out` as it was and says where its own masks are (QA pass 30: a frame unreadable mid-run left 15 of an
    earlier run's 20 masks rewritten); the next run that ends well there removes that folder. After the run,
    masks in `out` from an earlier run that this one did not rewrite are named (sixth CLI QA pass: an
    interrupted re-run left 12 of 30 old masks looking as complete as the new, and `evaluate` scored the
    mixture). A run writing into `out` meanwhile refuses this one (QA pass 57: two runs into one folder both
    ended well, and one's masks were all the other's)."""
    earlier = {p.stem for p in out.glob("*.png") if not p.name.startswith(".")} if out.is_dir() else set()
    lock, token = out / OUTPUT_LOCK, uuid.uuid4().hex
    try:
        record = locks.take(lock, token)
    except OSError as exc:  # QA pass 79: the message named the lock file, not the folder
        raise InputError(f"cannot write into --output {out}: {exc.strerror or exc}") from None
    if record is not None:
        raise InputError(f"another run ({locks.who(record)}) is writing masks into {out}: wait for it or give "
                         f"another --output. If no run is writing there, delete {lock}")
    try:
        stage, home = out, out.resolve()  # beside the folder a link names (QA pass 106)
        try:
            if earlier:
                stage = Path(tempfile.mkdtemp(prefix=f"{home.name}.new-", dir=home.parent))
                if os.stat(stage).st_dev != os.stat(home).st_dev:  # QA pass 106: a mount point's masks could
                    raise OSError("another file system")  # not be moved in at the end ("Invalid cross-device link")
                (stage / STAGE_MARK).write_text(_stage_mark(out, stage), encoding="utf-8")
        except OSError:  # no room beside it (a read-only parent, a full disk, another file system): straight into
            if stage != out:  # `out`, as into a new folder, and no unmarked folder left beside it (QA pass 79)
                shutil.rmtree(stage, ignore_errors=True)
            stage = out
        try:
            yield stage
        except BaseException as exc:
            if stage == out:
                _name_earlier_left(out, earlier, names, written)
                if isinstance(exc, KeyboardInterrupt) and not earlier:  # QA pass 106: "interrupted", no more
                    count = len(list(out.glob("*.png")))
                    warnings.warn(f"{out} holds {count} of the {len(names)} frames' masks: the same command again "
                                  "makes them all")
            elif made := sorted(stage.glob("*.png")):
                mask = "the mask this run wrote is" if len(made) == 1 else f"the {len(made)} masks this run wrote are"
                warnings.warn(f"{out} keeps the earlier run's masks as they were; {mask} in {stage}")
            else:
                shutil.rmtree(stage, ignore_errors=True)
            raise
        if stage != out:
            for path in stage.glob("*.png"):
                os.replace(path, out / path.name)
            shutil.rmtree(stage, ignore_errors=True)
        (out / STAGE_MARK).unlink(missing_ok=True)  # a stopped run's folder a run has ended well in is an output
        _remove_stopped_runs(out)
        _name_earlier_left(out, earlier, names, written)
    finally:
        locks.release(lock, token)


OUTPUT_LOCK = ".stm-writing"
"""In an output folder while a run writes masks there (a dot name: mask scans skip it)."""


STAGE_MARK = ".stm-stage"
"""In the folder a re-run writes its masks into (`OUT.new-xxxxxxxx`): the output it is for, and its own name. Only
folders holding it are ever removed."""


def _stage_mark(out: Path, stage: Path) -> str:
    return f"{out.resolve()}\n{stage.name}"


def _remove_stopped_runs(out: Path) -> None:
    """Remove the folders of masks that stopped re-runs into `out` left beside it, now that a run into `out` has
    ended well: they are older and partial (QA pass 57: they piled up, looking like more sequences to a loop
    over the outputs). Only real folders (not links) that a run marked as its own for `out`, holding nothing but
    its PNGs, go (QA pass 65: a link of that name had its target's PNGs deleted, and a user's dated copy went)."""
    removed, home = [], out.resolve()
    for folder in home.parent.glob(f"{glob.escape(home.name)}.new-*"):
        try:
            if folder.is_symlink() or not folder.is_dir() \
                    or (folder / STAGE_MARK).read_text(encoding="utf-8") != _stage_mark(out, folder):
                continue  # QA pass 66: a copy of such a folder, or one a run has ended well in, is kept
            files = [f for f in folder.iterdir() if f.name != STAGE_MARK]
            if not all(f.suffix == ".png" and f.is_file() and not f.is_symlink() for f in files):
                continue
            shutil.rmtree(folder)
            removed.append(folder.name)
        except (OSError, ValueError):  # unreadable, or a mark that is not text (QA pass 66)
            continue
    if removed:
        warnings.warn(f"removed {', '.join(sorted(removed))} beside {out}: the masks of runs into it that were "
                      "stopped")


def _name_earlier_left(out: Path, earlier: set[str], names: list[str], written: set[int]) -> None:
    left = sorted(earlier - {names[i] for i in written}, key=natural_key)
    if left:
        warnings.warn(f"{len(left)} mask{'s' if len(left) > 1 else ''} in {out} {'are' if len(left) > 1 else 'is'} "
                      f"from an earlier run and {'were' if len(left) > 1 else 'was'} not rewritten by this one "
                      f"(first: {left[0]}.png); a fresh --output holds this run's masks alone")


def _check_json_target(path: str | None, option: str = "--json", created: Path | None = None,
                       inputs: tuple[str | None, ...] = (), mask_folders: tuple[str, ...] = ()) -> None:
    """Found before the work, not after it (a benchmark takes minutes); `created`: a folder the command makes,
    in which the file may go (but not as one of the PNGs it writes there). The file must not be one of the
    `inputs` or lie inside one (QA pass 18: a tab-completed `--coco clip.mp4` replaced the video with JSON), nor
    be a PNG in one of the `mask_folders` the command reads only PNGs from, where another file may go (QA pass
    37: `--json out/r50/scores.json` beside the predictions was refused)."""
    if not path:
        return
    target = Path(path).resolve()
    if not target.parent.is_dir() and (created is None or target.parent != created.resolve()):
        under = next((p for p in target.parents if p.exists()), None)
        if under is not None and not under.is_dir():  # QA pass 27: said "its folder does not exist"
            raise InputError(f"{option} {path} would be inside {under}, which is a file, not a folder")
        raise InputError(f"{option} {path}: its folder does not exist")
    if Path(path).is_dir() or (created is not None and target == created.resolve()):
        raise InputError(f"{option} {path} is a folder; give a file name")
    if target.parent.is_dir() and not os.access(target.parent, os.W_OK):  # QA pass 79: found after the run
        raise InputError(f"{option} {path}: its folder cannot be written")
    read_pngs = {Path(s).resolve() for s in mask_folders}
    for source in [*(Path(s).resolve() for s in inputs if s), *read_pngs]:
        if target != source and source not in target.parents:
            continue
        if target != source and source in read_pngs and target.suffix.lower() != ".png":
            continue  # the command reads only the PNGs there
        if target == source or target.exists():
            raise InputError(f"{option} {path} would overwrite {'an input' if target == source else 'a file in'} "
                             f"{source}: give another file name")
        raise InputError(f"{option} {path} would be read as a mask of {source}: give a .json file name"
                         if source in read_pngs else
                         f"{option} {path} would be inside the input folder {source}: give another file name")
    if created is not None and target.parent == created.resolve() and target.suffix.lower() == ".png":
        raise InputError(f"{option} {path} would be a mask of the output folder: give a .json file name")


def cmd_evaluate(a: argparse.Namespace) -> int:
    from .io.atomic import atomic_write_bytes
    from .metrics import evaluate_dirs, format_table

    _check_json_target(a.json, mask_folders=(a.gt_dir, a.pred_dir))
    result = evaluate_dirs(a.gt_dir, a.pred_dir, objects=a.objects, name=a.name)
    print(format_table(result))
    if a.json:
        payload = {"gt_dir": str(Path(a.gt_dir).resolve()), "pred_dir": str(Path(a.pred_dir).resolve()),
                   "mode": "per object (DAVIS-2017)" if a.objects else "foreground (DAVIS-2016)",
                   "frames": "1..N-2 of each sequence (the first and last are not scored, as in the DAVIS toolkits)",
                   "rows": [{**asdict(r), "jf_mean": r.jf_mean} for r in result.rows],
                   "J": result.j_mean, "F": result.f_mean, "JF": result.jf_mean}
        atomic_write_bytes(a.json, json.dumps(payload, indent=2).encode("utf-8"))
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from .train.trainer import train

    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in vars(a).items() if k in known and v is not None})
    _check_train_config(cfg)
    if a.init_weights and a.model is None:  # the network is the one the weights hold (the official file: stm-r50)
        from .model.checkpoint import load_model

        with warnings.catch_warnings():  # said once, when train() loads them
            warnings.simplefilter("ignore")
            cfg = replace(cfg, model=load_model(cfg.model, a.init_weights).cfg.name)
    best = train(cfg)
    print(f"best weights: {best}")
    return 0


TRAIN_MINIMUMS = {"steps": 1, "batch_size": 1, "frames": 2, "crop": 32, "max_objects": 1, "log_every": 1,
                  "ckpt_every": 1, "val_every": 0, "warmup": 0, "workers": 0}
"""Smallest sensible value of each training option: a clip needs a memory frame and a query frame, and a
crop under 32 px leaves the 1/16-scale features a single pixel, which BatchNorm cannot train on."""


def _check_train_config(cfg: TrainConfig) -> None:
    """One-line errors for values that would crash the run or silently train nothing (the DAVIS sequences it
    reads are checked by `train` itself, before it writes anything)."""
    for name, least in TRAIN_MINIMUMS.items():
        if getattr(cfg, name) < least:
            raise StmError(f"--{name.replace('_', '-')} must be at least {least}")
    if cfg.crop % 4:  # QA pass 30: a size mismatch traceback (the network's output is a quarter the size, x4)
        raise StmError(f"--crop must be a multiple of 4 ({cfg.crop // 4 * 4} or {cfg.crop // 4 * 4 + 4}), not "
                       f"{cfg.crop}")
    for name in ("davis_weight", "static_prob", "paste_prob"):  # QA pass 21: 5 and -3 were taken
        if not 0 <= getattr(cfg, name) <= 1:
            raise StmError(f"--{name.replace('_', '-')} is a share: it must lie in 0..1, not {getattr(cfg, name)}")
    for name in ("lr", "max_minutes"):  # QA pass 21: --max-minutes 0 wrote an untrained best.pt, exit 0
        if getattr(cfg, name) is not None and not getattr(cfg, name) > 0:
            raise StmError(f"--{name.replace('_', '-')} must be above 0, not {getattr(cfg, name)}")
    if cfg.val_height not in (None, 0) and cfg.val_height < MIN_PROCESS_HEIGHT:  # was named process_height
        raise StmError(f"--val-height must be 0 (the source size) or at least {MIN_PROCESS_HEIGHT}, not "
                       f"{cfg.val_height}")
    out = Path(cfg.out_dir)  # QA pass 21: "[Errno 17] File exists"; a missing DAVIS root left a log behind
    if out.exists() and not out.is_dir():
        raise StmError(f"--out-dir {out} is a file, not a folder")
    if cfg.davis_root and not (Path(cfg.davis_root) / "JPEGImages").is_dir():
        raise StmError(f"--davis-root {cfg.davis_root} is not a DAVIS folder (no JPEGImages folder in it)" if
                       Path(cfg.davis_root).is_dir() else f"--davis-root folder not found: {cfg.davis_root}")
    if cfg.val_every and not cfg.davis_root:
        print("note: no validation without --davis-root; best.pt will be the latest weights", file=sys.stderr)


def cmd_bench(a: argparse.Namespace) -> int:
    from .bench import main as bench_main
    from .model.checkpoint import DEFAULT_WEIGHTS

    _check_json_target(a.json, inputs=(getattr(a, "weights", None) or str(DEFAULT_WEIGHTS),))
    return bench_main(a)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stm_core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("propagate", help="propagate annotated masks through a video or frame folder")
    p.add_argument("images", help="folder of frames (jpg, png, bmp, webp, tif, gif) or a video file")
    p.add_argument("--annotations", required=True,
                   help="folder of masks (PNG, or JPEG…) named like the frames; a later mask showing only new "
                        "objects adds them where they enter (the Cutie/XMem convention), any other mask is its whole "
                        "frame")
    p.add_argument("--output", required=True,
                   help="folder for one palette PNG per frame; masks already there are replaced once the run "
                        "has ended well (until then it writes into a folder beside it), and any it does not rewrite "
                        "are named in a warning")
    p.add_argument("--direction", choices=["both", "forward", "backward"], default="both",
                   help="both (default): every frame, backward from the first mask and forward from each; forward "
                        "or backward: only that way from each mask, so frames on the other side get no mask")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--coco", metavar="FILE", help="also write the masks as a COCO instance-segmentation file "
                   "(RLE; object names from an objects.json in or beside the annotations folder)")
    _engine_args(p)
    p.set_defaults(func=cmd_propagate)

    p = sub.add_parser("evaluate", help="DAVIS J&F of predicted masks against ground truth")
    p.add_argument("gt_dir", help="ground-truth masks: one sequence's PNGs, or a folder of sequence folders")
    p.add_argument("pred_dir", help="predicted masks laid out as gt_dir (file names matched); frames 1..N-2 of "
                                    "each sequence are scored, as the DAVIS toolkits do")
    p.add_argument("--objects", action="store_true",
                   help="score each object separately (DAVIS-2017), from the first frame it appears on")
    p.add_argument("--json", help="also write the scores to this JSON file")
    p.add_argument("--name", help="the sequence's name in the table and JSON where gt_dir holds one sequence's "
                                  "PNGs (default: gt_dir's folder name)")
    p.set_defaults(func=cmd_evaluate)

    defaults = TrainConfig()
    p = sub.add_parser("train", help="train the network (resumes from OUT_DIR/last.pt)")
    p.add_argument("--out-dir", dest="out_dir", default=defaults.out_dir,
                   help="checkpoints, weights and log.jsonl (default: %(default)s)")
    p.add_argument("--model", choices=list(CONFIGS),
                   help=f"network configuration (default: the one --init-weights holds, else {defaults.model})")
    p.add_argument("--init-weights", dest="init_weights", help="start from this weights file (e.g. the shipped one)")
    p.add_argument("--davis-root", dest="davis_root",
                   help="DAVIS-2016 folder: training reads its seven training sequences (blackswan, bmx-trees, "
                        "breakdance, camel, car-roundabout, cows, libby) and validates on dog, horsejump-high and "
                        "kite-surf, each as JPEGImages/480p/NAME/*.jpg with Annotations/480p/NAME/*.png; no other "
                        "sequences (without it: synthetic clips only, no validation)")
    for name, typ, text in (
            ("steps", int, "optimizer steps in all"), ("batch-size", int, "clips per step"),
            ("crop", int, "square crop size in px"), ("lr", float, "peak learning rate"),
            ("warmup", int, "steps of linear learning-rate warm-up"),
            ("davis-weight", float, "share of real DAVIS clips among the synthetic ones"),
            ("val-every", int, "validate every N steps (0: never)"),
            ("val-height", int, "working height of the validation"), ("ckpt-every", int, "save last.pt every N steps"),
            ("seed", int, "random seed"), ("workers", int, "data loader processes"),
            ("threads", int, "intra-op CPU threads (none: PyTorch's choice)"),
            ("max-objects", int, "objects per synthetic clip at most"), ("log-every", int, "log every N steps"),
            ("frames", int, "frames per training clip"),
            ("static-prob", float, "share of real clips warped from one still frame"),
            ("paste-prob", float, "chance of pasting an object from another sequence into a real clip")):
        dest = name.replace("-", "_")
        default = getattr(defaults, dest)
        p.add_argument(f"--{name}", dest=dest, type=typ,
                       help=f"{text} (default: {'none' if default is None else default})")
    p.add_argument("--max-minutes", dest="max_minutes", type=float,
                   help="stop after this many minutes of training in all (resumes included); the learning rate, "
                        "curriculum and bootstrapping anneal over them when they end the run before --steps "
                        "(default: no limit)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: auto (CUDA if available)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("bench", help="speed and memory of propagation (see BENCHMARKS.md)")
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--quick", action="store_true", help="fewer frames and configurations, no adaptation")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"],
                   help="where to measure (default: cpu, the laptop case the targets are set for)")
    p.set_defaults(func=cmd_bench)
    return parser


OUT_OF_MEMORY = "out of system memory: close other programs, or lower --max-memory and --process-height"


class _Terminated(KeyboardInterrupt):
    """SIGTERM (`timeout`, a job scheduler) stops a run as Ctrl+C does, with exit status 143 (QA pass 25: it
    killed the process without a word that the COCO file was not written)."""


_STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt_once(signum: int, frame: object) -> None:
    """The first Ctrl+C (or SIGTERM) stops the run; further ones are ignored, so they cannot break the clean-up
    (the network thread finishing its frame) and abort the process."""
    for each in _STOPPING_SIGNALS:
        signal.signal(each, signal.SIG_IGN)
    raise _Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: object = None, line: str | None = None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {each: signal.signal(each, _interrupt_once) for each in _STOPPING_SIGNALS} if main_thread else {}
    shown, warnings.showwarning = warnings.showwarning, _one_line_warning
    try:  # a Ctrl+C while torch loads says "interrupted" too (QA pass 57: it gave a traceback)
        args = build_parser().parse_args(argv)
        from .engine.hardware import prepare_compute_thread  # imports torch: not needed for --help
        prepare_compute_thread()  # training and the bench's reference path compute on this thread
        return args.func(args)
    except (StmError, OSError, ValueError) as exc:
        options = " (--max-memory, --process-height)" if isinstance(exc, OutOfMemoryError) else ""
        print(f"error: {exc}{options}", file=sys.stderr)
        return 2
    except MemoryError:  # QA pass 79: out of memory as torch loads gave a traceback
        print(f"error: {OUT_OF_MEMORY}", file=sys.stderr)
        return 2
    except ImportError as exc:  # QA passes 79, 81: short of memory, a library (torch's, OpenCV's) cannot be mapped
        short = "failed to map segment" in str(exc) or "cannot allocate memory" in str(exc).lower()
        print(f"error: {OUT_OF_MEMORY if short else 'a library cannot be loaded: reinstall the program'} ({exc})",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, _Terminated)
        print("terminated" if terminated else "interrupted", file=sys.stderr)
        return 143 if terminated else 130
    finally:
        warnings.showwarning = shown
        for each, handler in previous.items():  # after a Ctrl+C or SIGTERM they stay ignored until the
            if signal.getsignal(each) is _interrupt_once:  # process has exited; run as the program (no
                # `argv`), Ctrl+C stays ignored too: it exits now, and a late one turned a run that had written
                # everything into a kill without a word (QA pass 79). SIGTERM comes back: a process stuck at
                # exit must still stop for it (QA pass 85)
                late = argv is None and each == signal.SIGINT
                signal.signal(each, signal.SIG_IGN if late else handler)
