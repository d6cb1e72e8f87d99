"""The command line as the acceptance checks call it: outputs, exit status 2 and one-line errors."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stm_core.cli import main
from stm_core.engine import hardware
from stm_core.engine.settings import EngineSettings
from stm_core.io.masks import read_mask, write_mask
from stm_core.model.checkpoint import save_weights
from stm_core.model.config import STM_SMALL
from stm_core.model.stm import STM
from stm_core.session import AnnotationSession

from .conftest import require_shared
from .engine_helpers import square_mask, write_clip


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """An untrained network, the same in every run: what it tracks decides some outcomes (the judo test lost
    object 3 in one of four runs when these weights were drawn afresh each time)."""
    path = tmp_path_factory.mktemp("w") / "random.pt"
    torch.manual_seed(0)
    save_weights(STM(STM_SMALL), path, {"step": 0})
    return path


@pytest.fixture
def clip(tmp_path) -> tuple[Path, Path]:
    frames = write_clip(tmp_path / "frames", frames=5)
    ann = tmp_path / "ann"
    ann.mkdir()
    write_mask(ann / "00000.png", square_mask())
    return frames, ann


def test_propagate_writes_one_palette_png_per_frame(tmp_path, clip, weights):
    frames, ann = clip
    out = tmp_path / "out"
    assert main(["propagate", str(frames), "--annotations", str(ann), "--output", str(out),
                 "--weights", str(weights), "--device", "cpu", "--quiet", "--adapt-steps", "3"]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == [f"{i:05d}.png" for i in range(5)]
    assert np.array_equal(read_mask(out / "00000.png"), square_mask())
    assert read_mask(out / "00004.png").shape == (48, 80)


def test_masks_an_earlier_run_left_in_the_output_are_named(tmp_path, clip, weights, capsys):
    """Sixth CLI QA pass: a re-run into a folder holding another run's masks said nothing about those it did
    not rewrite, which then looked as current as the rest (and `evaluate` scored the mixture)."""
    frames, ann = clip
    out = tmp_path / "out"
    out.mkdir()
    for name in ("00002.png", "00007.png", "00010.png"):  # a rewritten frame and two of a longer earlier clip
        write_mask(out / name, square_mask())
    assert main(["propagate", str(frames), "--annotations", str(ann), "--output", str(out),
                 "--weights", str(weights), "--device", "cpu", "--quiet", "--adapt-steps", "0"]) == 0
    err = capsys.readouterr().err
    assert f"warning: 2 masks in {out} are from an earlier run and were not rewritten by this one " \
           "(first: 00007.png)" in err


def test_a_rerun_that_fails_midway_leaves_the_earlier_runs_masks_as_they_were(tmp_path, clip, weights, capsys):
    """QA pass 30: a frame that could not be read mid-run left 15 of the earlier run's 20 masks rewritten, the
    folder a mixture. A re-run now writes beside the folder and replaces its masks only once it has ended well."""
    frames, ann = clip
    out = tmp_path / "out"
    run = ["propagate", str(frames), "--annotations", str(ann), "--output", str(out), "--weights", str(weights),
           "--device", "cpu", "--quiet", "--adapt-steps", "0"]
    assert main(run) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    write_mask(ann / "00000.png", square_mask(t=1))  # the re-run's masks differ
    whole = (frames / "00003.png").read_bytes()
    (frames / "00003.png").write_bytes(whole[:len(whole) // 3])  # cut: unreadable when the run gets there
    assert main(run) == 2
    err = capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    kept = next(tmp_path.glob("out.new-*"))
    assert sorted(p.name for p in kept.iterdir()) == [".stm-stage", "00000.png", "00001.png", "00002.png"]
    assert f"warning: {out} keeps the earlier run's masks as they were; the 3 masks this run wrote are in {kept}" \
           in err and "cannot read image" in err
    (frames / "00003.png").write_bytes(whole)
    dated, precious = tmp_path / "out.new-20261203", tmp_path / "precious"  # QA pass 65: a user's folders of
    for folder in (dated, precious):  # masks named as a run's, or linked to by such a name, lost their masks
        folder.mkdir()
        write_mask(folder / "00000.png", square_mask())
    (tmp_path / "out.new-linkabcd").symlink_to(precious)
    shutil.copytree(kept, tmp_path / "out.new-copyabcd")  # QA pass 66: a copy of a stopped run's folder went
    assert main(run) == 0  # ended well: its masks replace the earlier ones, and nothing is left beside
    assert np.array_equal(read_mask(out / "00000.png"), square_mask(t=1))
    assert sorted(p.name for p in tmp_path.glob("out.new-*")) == [dated.name, "out.new-copyabcd",  # QA pass 57:
                                                                   "out.new-linkabcd"]
    assert (dated / "00000.png").exists() and (precious / "00000.png").exists()  # the stopped one's went
    assert f"warning: removed {kept.name} beside {out}: the masks of runs into it that were stopped" \
           in capsys.readouterr().err


def test_a_run_into_a_folder_another_run_writes_is_refused(tmp_path, clip, weights, capsys):
    """QA pass 57: two runs into one output folder both ended well, and one's masks were all the other's."""
    from stm_core.cli import OUTPUT_LOCK
    from stm_core.io import locks

    frames, ann = clip
    out = tmp_path / "out"
    run = ["propagate", str(frames), "--annotations", str(ann), "--output", str(out), "--weights", str(weights),
           "--device", "cpu", "--quiet", "--adapt-steps", "0"]
    assert locks.take(out / OUTPUT_LOCK, "the other run") is None  # a live process (this one) holds it
    assert main(run) == 2 and not list(out.glob("*.png"))
    assert f"another run (process {os.getpid()}) is writing masks into {out}" in capsys.readouterr().err
    locks.release(out / OUTPUT_LOCK, "the other run")
    assert main(run) == 0 and len(list(out.glob("*.png"))) == 5 and not (out / OUTPUT_LOCK).exists()


def test_propagate_with_several_annotations_and_late_object(tmp_path, clip, weights, capsys):
    frames, ann = clip
    later = square_mask(t=3)
    later[36:44, 60:70] = 2
    write_mask(ann / "00003.png", later)
    out = tmp_path / "out"
    assert main(["propagate", str(frames), "--annotations", str(ann), "--output", str(out),
                 "--weights", str(weights), "--device", "cpu", "--mem-every", "1", "--adapt-steps", "0"]) == 0
    precision = hardware.describe_precision(torch.device("cpu"))  # fp32 here unless the CPU has AVX-512 BF16
    err = capsys.readouterr().err
    assert f"propagating on CPU ({precision})\n" in err  # a line, no progress bar: stderr is no terminal
    assert "\r" not in err  # QA pass 106: a log file got the bar's carriage returns, warnings glued on
    assert len(list(out.glob("*.png"))) == 5
    assert np.array_equal(read_mask(out / "00003.png"), later)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools' decoder
def test_coco_file_holds_the_written_masks_with_the_exported_object_names(tmp_path, clip, weights):
    """`--coco`: one COCO image per frame with a mask (a forward run from frame 2 leaves 0 and 1 out), each
    object's mask decoding to the PNG written for it, named from the annotations' objects.json."""
    from pycocotools import mask as mask_utils

    frames, ann = clip
    (ann / "00000.png").unlink()
    two = square_mask(t=2)
    two[36:44, 60:70] = 2
    write_mask(ann / "00002.png", two)
    (ann / "objects.json").write_text(json.dumps([{"id": 1, "name": "dog", "color": [1, 2, 3]}]))
    out = tmp_path / "out"
    coco_path = out / "coco.json"  # QA pass 13: refused while the output folder did not exist yet
    assert main(["propagate", str(frames), "--annotations", str(ann), "--output", str(out), "--direction",
                 "forward", "--coco", str(coco_path), "--weights", str(weights), "--device", "cpu", "--quiet",
                 "--adapt-steps", "0"]) == 0
    coco = json.loads(coco_path.read_text())
    assert [image["file_name"] for image in coco["images"]] == ["00002.png", "00003.png", "00004.png"]
    assert {c["name"] for c in coco["categories"]} == {"dog", "object 2"}
    category = {c["id"]: c["name"] for c in coco["categories"]}
    for image in coco["images"]:
        labels = read_mask(out / image["file_name"])  # the frames are PNGs named as the masks
        anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        assert {a["track_id"] for a in anns} == set(np.unique(labels).tolist()) - {0}
        for a in anns:
            assert np.array_equal(mask_utils.decode(a["segmentation"]).astype(bool), labels == a["track_id"])
            assert category[a["category_id"]] == ("dog" if a["track_id"] == 1 else "object 2")


def _run(args: list[str]) -> subprocess.CompletedProcess:
    """The CLI in a subprocess; propagation without test-time adaptation unless asked (these tests check IO,
    and adapting an untrained network only costs time)."""
    if args[0] == "propagate" and "--adapt-steps" not in args:
        args = [*args, "--adapt-steps", "0"]
    return subprocess.run([sys.executable, "-m", "stm_core", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", ["missing_folder", "empty_folder", "bad_mask", "broken_weights",
                                  "corrupt_frame", "no_masks", "output_is_frames", "output_is_annotations",
                                  "process_height", "top_k", "model_mismatch", "empty_output", "coco_onto_a_frame",
                                  "coco_onto_a_mask", "coco_onto_the_weights", "coco_as_an_output_mask",
                                  "coco_as_the_output_folder", "frame_of_another_size"])
def test_bad_input_exits_2_with_one_line(tmp_path, clip, weights, case):
    frames, ann = clip
    args = ["propagate", str(frames), "--annotations", str(ann), "--output", str(tmp_path / "o"),
            "--weights", str(weights), "--device", "cpu", "--quiet"]
    if case == "missing_folder":
        args[1] = str(tmp_path / "nope")
    elif case == "empty_folder":
        (tmp_path / "empty").mkdir()
        args[1] = str(tmp_path / "empty")
    elif case == "bad_mask":
        write_mask(ann / "00000.png", np.zeros((20, 20), np.uint8))
    elif case == "broken_weights":
        bad = tmp_path / "bad.pt"
        bad.write_bytes(weights.read_bytes()[:1000])
        args[args.index(str(weights))] = str(bad)
    elif case == "corrupt_frame":
        (frames / "00002.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    elif case == "frame_of_another_size":  # QA pass 69: refused when the run got there, after its work
        Image.new("RGB", (79, 48)).save(frames / "00003.png")
    elif case == "no_masks":
        shutil.rmtree(ann)
        ann.mkdir()
    elif case in ("output_is_frames", "output_is_annotations"):
        args[args.index("--output") + 1] = str(frames if case == "output_is_frames" else ann)
    elif case in ("process_height", "top_k"):
        args += ["--process-height", "7"] if case == "process_height" else ["--top-k", "0"]
    elif case == "model_mismatch":  # the weights are a stm-small file
        args += ["--model", "stm-r50"]
    elif case == "empty_output":  # sixth CLI QA pass: `--output "$OUT"` with OUT unset wrote into the working folder
        args[5] = ""
    elif case.startswith("coco_"):  # QA pass 18: a tab-completed --coco replaced an input with JSON, exit 0
        target = {"coco_onto_a_frame": frames / "00003.png", "coco_onto_a_mask": ann / "00000.png",
                  "coco_onto_the_weights": weights, "coco_as_an_output_mask": tmp_path / "o" / "00001.png",
                  "coco_as_the_output_folder": tmp_path / "o"}[case]  # QA pass 19: refused after the run
        args += ["--coco", str(target)]
    before = {p.name: p.read_bytes() for p in [*frames.iterdir(), *ann.iterdir(), weights]}
    proc = _run(args)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "propagating" not in ln]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    if case == "corrupt_frame":  # frames before the bad one are complete files
        assert all(read_mask(p).shape == (48, 80) for p in (tmp_path / "o").glob("*.png"))
    assert {p.name: p.read_bytes() for p in [*frames.iterdir(), *ann.iterdir(), weights]} == before  # untouched
    if case == "frame_of_another_size":
        assert "00003.png is 79x48, the first frame is 80x48" in lines[0] and "resize it" in lines[0]
    if case in ("coco_as_the_output_folder", "frame_of_another_size"):  # said before the run, not after minutes of it
        assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("option,value,message", [
    ("--steps", 0, "must be at least 1"), ("--frames", 1, "must be at least 2"),
    ("--batch-size", 0, "must be at least 1"), ("--crop", 10, "must be at least 32"),
    ("--crop", 33, "must be a multiple of 4 (32 or 36), not 33"),  # QA pass 30: a size mismatch traceback
    ("--max-minutes", 0, "must be above 0, not 0.0"), ("--lr", -1, "must be above 0, not -1.0"),
    ("--static-prob", 5, "is a share: it must lie in 0..1, not 5.0"),
    ("--val-height", 7, "must be 0 (the source size) or at least 64, not 7")])
def test_bad_training_options_exit_2_with_one_line(tmp_path, option, value, message):
    """Fifth CLI QA pass: --frames 1 crashed with a traceback, --steps 0 wrote an untrained best.pt, exit 0.
    QA pass 21: the same for --max-minutes 0; --val-height 7 was named process_height; shares of 5 were taken."""
    proc = _run(["train", "--out-dir", str(tmp_path / "run"), option, str(value)])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {option} {message}"]
    assert not (tmp_path / "run").exists()


def test_paths_of_the_wrong_kind_are_named_as_such(tmp_path, clip):
    """QA pass 21: a mask file as ground truth was "folder not found", a folder as weights "file not found", a
    file as --out-dir "[Errno 17] File exists", and a missing --davis-root left a log file behind."""
    frames, ann = clip
    a_file = ann / "00000.png"
    gt_root = tmp_path / "gt"
    shutil.copytree(ann, gt_root / ann.name)
    cases = [
        (["evaluate", str(a_file), str(ann)], f"{a_file} is a file, not a folder of ground-truth masks: give its "
                                              "folder"),
        (["propagate", str(frames), "--annotations", str(ann), "--output", str(tmp_path / "o"), "--weights",
          str(ann)], f"{ann} is a folder, not a weights file"),
        (["train", "--out-dir", str(a_file)], f"--out-dir {a_file} is a file, not a folder"),
        (["propagate", str(frames), "--annotations", str(ann), "--output", str(a_file / "o")],  # QA pass 25
         f"--output {a_file / 'o'} would be inside {a_file}, which is a file, not a folder"),
        (["evaluate", str(ann), str(tmp_path)], f"{ann} is one sequence's masks, but {tmp_path} holds folders of "
                                                f"sequences: give {tmp_path / ann.name}"),
        (["evaluate", str(gt_root), str(ann)], f"{gt_root} holds folders of sequences, but {ann} is one sequence's "
                                               f"masks: give {gt_root / ann.name}"),  # QA pass 27: no hint
        (["train", "--out-dir", str(tmp_path / "run"), "--davis-root", str(tmp_path / "nowhere")],
         f"--davis-root folder not found: {tmp_path / 'nowhere'}"),
        (["propagate", str(frames), "--annotations", str(ann), "--output", str(tmp_path / "broken")],  # QA pass 45
         f"--output {tmp_path / 'broken'} is a link to {tmp_path / 'gone'}, which does not exist"),
    ]
    (tmp_path / "broken").symlink_to(tmp_path / "gone")
    for args, message in cases:
        proc = _run(args)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "run").exists() and not (tmp_path / "o").exists()


def _davis_layout(root: Path, sequences: list[str], frames: int = 2) -> Path:
    """A DAVIS-2016-layout folder of tiny sequences (JPEG frames, one PNG mask each)."""
    import cv2

    for seq in sequences:
        (root / "JPEGImages" / "480p" / seq).mkdir(parents=True)
        (root / "Annotations" / "480p" / seq).mkdir(parents=True)
        for t in range(frames):
            cv2.imwrite(str(root / "JPEGImages" / "480p" / seq / f"{t:05d}.jpg"), np.zeros((16, 16, 3), np.uint8))
            write_mask(root / "Annotations" / "480p" / seq / f"{t:05d}.png", np.ones((16, 16), np.uint8))
    return root


def test_training_data_that_is_not_there_is_named_before_the_run(tmp_path, capsys):
    """QA pass 37: a --davis-root without the validation sequences trained, then ended at the first validation
    ("not found: .../dog"); own data in DAVIS layout was "sequence 'blackswan' under ...: 0 images, 0 masks" and
    left a run folder with an empty log."""
    from stm_core.train.real_clips import TRAIN_SEQUENCES

    train_only = _davis_layout(tmp_path / "train_only", list(TRAIN_SEQUENCES))
    own = _davis_layout(tmp_path / "own", ["myseq"])
    (train_only / "Annotations" / "480p" / "camel" / "00001.png").unlink()
    run = ["train", "--out-dir", str(tmp_path / "run"), "--steps", "1", "--crop", "32", "--frames", "2"]
    cases = [
        (["--davis-root", str(own), "--val-every", "0"],
         f"--davis-root {own} holds none of the DAVIS-2016 training sequences: training reads the seven DAVIS-2016 "
         "training sequences (blackswan, bmx-trees, breakdance, camel, car-roundabout, cows, libby) and validates "
         "on the three validation ones (dog, horsejump-high, kite-surf), each as JPEGImages/480p/NAME/*.jpg with one "
         "Annotations/480p/NAME/*.png per frame; it reads no other sequences, so not data of your own "
         "(--davis-weight 0: synthetic clips only)"),
        (["--davis-root", str(train_only), "--val-every", "2"],
         f"--davis-root {train_only} holds not the training sequence camel (2 frames, 1 with a mask of their name) "
         "and none of the DAVIS-2016 validation sequences: "),
        (["--davis-root", str(train_only), "--val-every", "2", "--davis-weight", "0"],  # the training ones unread
         f"--davis-root {train_only} holds none of the DAVIS-2016 validation sequences: training reads"),
    ]
    for options, message in cases:
        assert main(run + options) == 2
        assert capsys.readouterr().err.startswith(f"error: {message}")
    assert not (tmp_path / "run").exists()
    (train_only / "Annotations" / "480p" / "camel" / "00001.png").write_bytes(
        (train_only / "Annotations" / "480p" / "camel" / "00000.png").read_bytes())
    assert main(run[:-1] + ["3", "--davis-root", str(train_only), "--val-every", "0"]) == 2
    assert capsys.readouterr().err == "error: --frames 3 is more than the 2 frames of the shortest training sequence\n"
    assert not (tmp_path / "run").exists()


def test_a_later_mask_adds_objects_unless_it_repeats_one():
    from stm_core.io.masks import add_objects, split_annotations

    one, two, both = (np.full((2, 2), v, np.uint8) for v in (1, 2, 0))
    both[0] = 1
    both[1] = 2
    complete, adding = split_annotations({0: one, 4: two, 5: two, 6: both, 9: np.zeros((2, 2), np.uint8)})
    assert sorted(complete) == [0, 6, 9] and sorted(adding) == [4, 5]  # 6 repeats object 1: a correction
    assert sorted(split_annotations({4: two, 6: both}, known_objects=[1])[1]) == [4]
    frame = np.array([[1, 1], [2, 0]], np.uint8)
    assert add_objects(frame, np.array([[0, 3], [0, 0]], np.uint8)).tolist() == [[1, 3], [2, 0]]
    assert add_objects(frame, np.array([[0, 0], [0, 2]], np.uint8)).tolist() == [[1, 1], [0, 2]]
    assert add_objects(None, np.array([[0, 0], [0, 2]], np.uint8)).tolist() == [[0, 0], [0, 2]]


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_direction_propagates_one_way_from_each_mask(tmp_path, clip, weights, direction, capsys):
    """Sixth CLI QA pass: the CLI always propagated both ways from every mask; only-backward from a middle
    frame was impossible. Seventh: the frames a direction leaves without masks are named."""
    frames, ann = clip
    (ann / "00000.png").unlink()
    write_mask(ann / "00002.png", square_mask(t=2))
    out = tmp_path / "out"
    assert main(["propagate", str(frames), "--annotations", str(ann), "--output", str(out), "--direction",
                 direction, "--weights", str(weights), "--device", "cpu", "--quiet", "--adapt-steps", "0"]) == 0
    written = sorted(int(p.stem) for p in out.glob("*.png"))
    assert written == ([2, 3, 4] if direction == "forward" else [0, 1, 2])
    left = "2 frames before the first mask without masks (00000..00001)" if direction == "forward" else \
        "2 frames after the last mask without masks (00003..00004)"
    assert left in capsys.readouterr().err


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_one_direction_is_one_way_between_masks_too(tmp_path, clip, weights, direction):
    """QA pass 21: between two masks the frames also got the run from the other mask, blended in, so forward
    and backward wrote the same masks there."""
    frames, ann = clip
    write_mask(ann / "00004.png", square_mask(t=4))
    out = tmp_path / "out"
    assert main(["propagate", str(frames), "--annotations", str(ann), "--output", str(out), "--direction",
                 direction, "--weights", str(weights), "--device", "cpu", "--quiet", "--adapt-steps", "0"]) == 0
    session = AnnotationSession.open(frames, EngineSettings(weights=str(weights), device="cpu", adapt_steps=0))
    session.set_annotation(0, square_mask())
    session.set_annotation(4, square_mask(t=4))
    report = session.propagate(0 if direction == "forward" else 4, direction, return_runs=False)
    assert sorted(report.frames) == [1, 2, 3]
    for t in (1, 2, 3):
        assert np.array_equal(read_mask(out / f"{t:05d}.png"), session.labels(t))


def test_backward_with_a_mask_adding_an_object_is_refused(tmp_path, clip, weights, capsys):
    """QA pass 21: the warning said such masks were not used, and the PNGs and the COCO file disagreed. QA pass
    25: the masks of frames where objects enter went unwritten, and a later whole-frame mask's objects were
    tracked back to before they enter. Objects entering mid-video need a forward run: exit 2, nothing written."""
    frames, ann = clip
    entering = np.zeros((48, 80), np.uint8)
    entering[36:46, 60:76] = 2
    write_mask(ann / "00002.png", entering)
    write_mask(ann / "00004.png", square_mask(t=4))
    out, coco = tmp_path / "out", tmp_path / "coco.json"
    assert main(["propagate", str(frames), "--annotations", str(ann), "--output", str(out), "--direction",
                 "backward", "--weights", str(weights), "--device", "cpu", "--quiet", "--adapt-steps", "0",
                 "--coco", str(coco)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: the masks of frames 00002 add objects that enter there, tracked from there on: that needs a "
        "forward run; use --direction both or forward, or give whole-frame masks")
    assert not out.exists() and not coco.exists()


def test_training_from_the_official_weights_trains_and_records_their_network(tmp_path, capsys):
    """QA pass 25: `train --init-weights STM_weights.pth` trained stm-r50 whatever --model said, recorded the
    run as stm-small, and no resume command worked afterwards."""
    from stm_core.model.config import STM_R50

    torch.manual_seed(0)
    official = tmp_path / "STM_weights.pth"
    torch.save({"module." + k: v for k, v in STM(STM_R50).state_dict().items()}, official)
    run = ["train", "--out-dir", str(tmp_path / "run"), "--init-weights", str(official), "--batch-size", "1",
           "--crop", "64", "--val-every", "0", "--workers", "0", "--warmup", "0"]
    assert main(run + ["--steps", "1", "--model", "stm-small"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: --model stm-small asked for, but {official} holds a stm-r50 network: pass --model stm-r50")
    assert not (tmp_path / "run").exists()  # QA pass 27: a refused run left an empty --out-dir
    assert main(run + ["--steps", "1"]) == 0  # no --model: the network the weights hold
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["config"]["model"] == "stm-r50"  # resumable


def test_masks_for_every_frame_are_said_to_leave_nothing_to_propagate(tmp_path, clip, weights, capsys):
    frames, ann = clip  # sixth CLI QA pass: "0frame" on the bar, exit 0, and no word that nothing ran
    for t in range(1, 5):
        write_mask(ann / f"{t:05d}.png", square_mask(t=t))
    assert main(["propagate", str(frames), "--annotations", str(ann), "--output", str(tmp_path / "out"),
                 "--weights", str(weights), "--device", "cpu", "--quiet", "--adapt-steps", "0"]) == 0
    assert "nothing to propagate, the masks were copied" in capsys.readouterr().err
    assert len(list((tmp_path / "out").glob("*.png"))) == 5


def test_evaluate_json_says_what_was_scored(tmp_path, capsys):
    """Sixth CLI QA pass: the JSON held no folders, mode or frame convention, and an unwritable --json path
    was found only after the whole evaluation."""
    for folder, shift in (("gt", 0), ("pred", 1)):
        (tmp_path / folder / "seq").mkdir(parents=True)
        for t in range(4):
            write_mask(tmp_path / folder / "seq" / f"{t:05d}.png", square_mask(t=t + shift * (t > 0)))
    out = tmp_path / "scores.json"
    assert main(["evaluate", str(tmp_path / "gt"), str(tmp_path / "pred"), "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert scores["gt_dir"] == str((tmp_path / "gt").resolve()) and scores["mode"].startswith("foreground")
    assert "1..N-2" in scores["frames"] and scores["rows"][0]["sequence"] == "seq"
    row = scores["rows"][0]
    assert row["jf_mean"] == pytest.approx((row["j_mean"] + row["f_mean"]) / 2) and row["j_mean"] < 1
    # QA pass 57: one sequence's folders named `gt` and `pred` gave rows named "gt"; --name names it
    assert main(["evaluate", str(tmp_path / "gt" / "seq"), str(tmp_path / "pred" / "seq"), "--json", str(out),
                 "--name", "dog"]) == 0
    assert [r["sequence"] for r in json.loads(out.read_text())["rows"]] == ["dog"] and "dog" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "gt"), str(tmp_path / "pred"), "--name", "dog"]) == 2
    assert "holds folders of sequences, named after them: give one sequence's folder to name it" \
        in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "gt"), str(tmp_path / "pred"), "--json",
                 str(tmp_path / "nope" / "s.json")]) == 2
    # seventh CLI QA pass: a folder as --json, and bench's --json, were found only after the work
    assert main(["evaluate", str(tmp_path / "gt"), str(tmp_path / "pred"), "--json", str(tmp_path)]) == 2
    assert main(["bench", "--quick", "--json", str(tmp_path / "nope" / "b.json")]) == 2
    assert "its folder does not exist" in capsys.readouterr().err
    inside = tmp_path / "gt" / "seq" / "00003.png" / "s.json"  # QA pass 27: "its folder does not exist"
    assert main(["evaluate", str(tmp_path / "gt"), str(tmp_path / "pred"), "--json", str(inside)]) == 2
    assert f"would be inside {inside.parent}, which is a file, not a folder" in capsys.readouterr().err
    truth = (tmp_path / "gt" / "seq" / "00003.png").read_bytes()  # QA pass 18: the ground truth became JSON
    assert main(["evaluate", str(tmp_path / "gt"), str(tmp_path / "pred"), "--json",
                 str(tmp_path / "gt" / "seq" / "00003.png")]) == 2
    assert (tmp_path / "gt" / "seq" / "00003.png").read_bytes() == truth
    assert "would overwrite a file in" in capsys.readouterr().err


def test_evaluate_json_may_go_beside_the_masks_it_reads(tmp_path, capsys):
    """QA pass 37: a new `--json pred/scores.json` was refused as "would overwrite a file in pred"; evaluate reads
    only the PNGs there, so a JSON file (new, or the one a rerun rewrites) may go in, but no PNG."""
    for folder in ("gt", "pred"):
        (tmp_path / folder / "seq").mkdir(parents=True)
        for t in range(3):
            write_mask(tmp_path / folder / "seq" / f"{t:05d}.png", square_mask(t=t))
    gt, pred = str(tmp_path / "gt"), str(tmp_path / "pred")
    for target in (tmp_path / "pred" / "scores.json", tmp_path / "pred" / "scores.json", tmp_path / "gt" / "s.json"):
        assert main(["evaluate", gt, pred, "--json", str(target)]) == 0
        assert json.loads(target.read_text())["JF"] == 1.0
    masks = {p: p.read_bytes() for p in tmp_path.glob("*/seq/*.png")}
    capsys.readouterr()
    assert main(["evaluate", gt, pred, "--json", str(tmp_path / "pred" / "seq" / "00001.png")]) == 2
    assert f"would overwrite a file in {(tmp_path / 'pred').resolve()}" in capsys.readouterr().err
    assert main(["evaluate", gt, pred, "--json", str(tmp_path / "gt" / "seq" / "new.PNG")]) == 2
    assert f"would be read as a mask of {(tmp_path / 'gt').resolve()}" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in tmp_path.glob("*/seq/*.png")} == masks


def test_evaluate_reproduces_published_official_scores(capsys):
    gt = require_shared("data", "davis2016", "Annotations", "480p")
    pred = require_shared("data", "stm-official-results", "davis2016-val")
    published = {r["sequence"]: r for r in csv.DictReader(
        open(require_shared("data", "stm-official-results", "davis2016-val-scores.csv")))}
    assert main(["evaluate", str(gt), str(pred)]) == 0
    rows = {ln.split()[0]: ln.split() for ln in capsys.readouterr().out.splitlines()[1:-1]}
    for seq, r in published.items():
        assert abs(float(rows[seq][2]) - float(r["J_mean"])) < 1e-4
        assert abs(float(rows[seq][3]) - float(r["F_mean"])) < 1e-4


def test_judo_masks_added_mid_video_and_one_pixel_narrow_mask(tmp_path, weights):
    images = require_shared("data", "cutie-examples", "images", "judo")
    masks = require_shared("data", "cutie-examples", "masks", "judo")
    out = tmp_path / "out"
    proc = _run(["propagate", str(images), "--annotations", str(masks), "--output", str(out),
                 "--weights", str(weights), "--device", "cpu", "--quiet"])
    assert proc.returncode == 0, proc.stderr
    assert "00005.png" in proc.stderr  # the 853x480 mask is resized with a warning naming it
    assert len(list(out.glob("*.png"))) == 16
    assert read_mask(out / "00005.png").shape == (480, 854)
    # each later mask shows only the object entering there: it is added to the objects propagated so far
    # (which keep their masks on that frame), and it is tracked from there on, not before
    def objects(name: str) -> set[int]:
        return set(np.unique(read_mask(out / name)).tolist()) - {0}
    assert objects("00001.png") == {1} and objects("00005.png") == {1, 2} and objects("00013.png") == {1, 2, 3, 4}
    assert np.array_equal(read_mask(out / "00013.png") == 4, read_mask(masks / "00013.png") == 4)


def test_mistakes_that_are_said_in_plain_words(tmp_path, clip, weights, capsys):
    """QA pass 18: a mask file as --annotations said "mask folder not found"; --process-height above the frames'
    size was taken without a word; several ground-truth objects scored as one foreground gave no hint."""
    frames, ann = clip
    base = ["propagate", str(frames), "--output", str(tmp_path / "o"), "--weights", str(weights), "--device",
            "cpu", "--quiet", "--adapt-steps", "0"]
    assert main([*base, "--annotations", str(ann / "00000.png")]) == 2
    assert "00000.png is a file, not a folder of masks: give its folder" in capsys.readouterr().err
    assert main([*base, "--annotations", str(ann), "--process-height", "5000"]) == 0
    assert "--process-height 5000 is more than the frames' 48 px: the network works at 128 px" \
        in capsys.readouterr().err
    gt = tmp_path / "gt"
    gt.mkdir()
    for t in range(4):
        labels = square_mask(t=t)
        labels[:4, :4] = 2  # a second object
        write_mask(gt / f"{t:05d}.png", labels)
    assert main(["evaluate", str(gt), str(gt)]) == 0
    assert "holds several objects, scored together as one foreground (DAVIS-2016); score each object with " \
        "--objects" in capsys.readouterr().err
    assert main(["evaluate", str(gt), str(gt), "--objects"]) == 0
    assert "several objects" not in capsys.readouterr().err


def test_an_interrupted_run_says_its_coco_file_was_not_written(tmp_path, clip, weights, capsys, monkeypatch):
    """QA pass 18: Ctrl+C during `propagate --coco` said only "interrupted"; no COCO file was there."""
    from stm_core.session import AnnotationSession

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(AnnotationSession, "propagate", interrupted)
    frames, ann = clip
    coco = tmp_path / "coco.json"
    assert main(["propagate", str(frames), "--annotations", str(ann), "--output", str(tmp_path / "o"),
                 "--weights", str(weights), "--device", "cpu", "--quiet", "--adapt-steps", "0",
                 "--coco", str(coco)]) == 130
    err = capsys.readouterr().err
    assert f"--coco {coco} was not written: the run was interrupted" in err
    assert not coco.exists()
    held = len(list((tmp_path / "o").glob("*.png")))  # QA pass 106: a new folder's partial masks went unsaid
    assert f"{tmp_path / 'o'} holds {held} of the 5 frames' masks: the same command again makes them all" in err


def test_a_terminated_run_says_so_and_that_its_coco_file_was_not_written(tmp_path, clip, weights, capsys,
                                                                          monkeypatch):
    """QA pass 25: SIGTERM (from `timeout`, say) during `propagate --coco` ended the process with 143 and no
    word that the COCO file was not written."""
    import os
    import signal

    from stm_core.session import AnnotationSession

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this
        raise AssertionError("SIGTERM did not stop the run")

    monkeypatch.setattr(AnnotationSession, "propagate", terminated)
    frames, ann = clip
    coco = tmp_path / "coco.json"
    handlers = {each: signal.getsignal(each) for each in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert main(["propagate", str(frames), "--annotations", str(ann), "--output", str(tmp_path / "o"),
                     "--weights", str(weights), "--device", "cpu", "--quiet", "--adapt-steps", "0",
                     "--coco", str(coco)]) == 143
    finally:  # the CLI ignores both from then on, as a process about to exit should
        for each, handler in handlers.items():
            signal.signal(each, handler)
    err = capsys.readouterr().err
    assert f"--coco {coco} was not written: the run was interrupted" in err and err.endswith("terminated\n")
    assert not coco.exists()


def test_coco_onto_the_shipped_weights_is_refused(tmp_path, clip, monkeypatch, capsys):
    """QA pass 19: without --weights, `--coco` naming the shipped weights replaced them with JSON, exit 0
    (the shipped file is copied here, so that a failure cannot damage the real one)."""
    from stm_core.model import checkpoint

    shipped, real = tmp_path / "stm_small.pt", checkpoint.DEFAULT_WEIGHTS
    shipped.write_bytes(real.read_bytes())
    monkeypatch.setattr(checkpoint, "DEFAULT_WEIGHTS", shipped)
    frames, ann = clip
    assert main(["propagate", str(frames), "--annotations", str(ann), "--output", str(tmp_path / "o"),
                 "--device", "cpu", "--quiet", "--adapt-steps", "0", "--coco", str(shipped)]) == 2
    assert "would overwrite an input" in capsys.readouterr().err
    assert shipped.read_bytes() == real.read_bytes() and not (tmp_path / "o").exists()


def _propagate_args(frames: Path, ann: Path, out: Path, weights: Path, *extra: str) -> list[str]:
    return ["propagate", str(frames), "--annotations", str(ann), "--output", str(out), "--weights", str(weights),
            "--device", "cpu", "--quiet", "--adapt-steps", "0", *extra]


def test_an_output_that_cannot_be_written_is_named_as_such(tmp_path, clip, weights, capsys, monkeypatch):
    """QA pass 79: into a read-only place the error named the run's lock file."""
    import errno

    from stm_core import cli

    def read_only(path, token):
        raise OSError(errno.EROFS, "Read-only file system", str(path))
    monkeypatch.setattr(cli.locks, "take", read_only)
    out = tmp_path / "out"
    assert main(_propagate_args(*clip, out, weights)) == 2
    err = capsys.readouterr().err
    assert err == f"error: cannot write into --output {out}: Read-only file system\n"


def test_a_rerun_with_no_room_beside_the_output_leaves_nothing_there(tmp_path, clip, weights, capsys, monkeypatch):
    """QA pass 79: on a full disk the folder for the re-run's masks was made, its mark could not be written,
    and the empty folder stayed for good (no later run claims a folder without its mark)."""
    import errno

    from stm_core import cli

    frames, ann = clip
    out = tmp_path / "out"
    assert main(_propagate_args(frames, ann, out, weights)) == 0

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(cli, "_stage_mark", full)
    assert main(_propagate_args(frames, ann, out, weights)) == 0  # straight into the output instead
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("out.")] == []
    import stm_core.io.masks

    monkeypatch.setattr(stm_core.io.masks, "write_mask", full)  # no mask can be written: none is said rewritten
    assert main(_propagate_args(frames, ann, out, weights)) == 2
    err = capsys.readouterr().err
    assert f"warning: 5 masks in {out} are from an earlier run and were not rewritten by this one " \
           "(first: 00000.png)" in err and "No space left on device" in err


def test_a_rerun_into_an_output_on_another_file_system_or_behind_a_link_replaces_its_masks(
        tmp_path, clip, weights, capsys, monkeypatch):
    """QA pass 106: with the output a mount point (or a link to another disk), the re-run's masks, made beside it
    on its parent's file system, could not be moved in at the end: "Invalid cross-device link" after the whole
    run, every time, and a folder of masks left each time."""
    import errno

    frames, ann = clip
    real = tmp_path / "disk" / "masks"
    real.mkdir(parents=True)
    link = tmp_path / "link out"
    link.symlink_to(real)
    assert main(_propagate_args(frames, ann, link, weights)) == 0
    first = {p.name: p.stat().st_mtime_ns for p in real.glob("*.png")}
    assert main(_propagate_args(frames, ann, link, weights)) == 0  # staged beside the target, not the link
    assert sorted(p.name for p in (tmp_path / "disk").iterdir()) == ["masks"]
    stat = os.stat

    def other_device(path, *args, **kwargs):  # the folder made beside the output is on another file system
        found = stat(path, *args, **kwargs)
        if ".new-" not in str(path):
            return found
        fields = list(found[:10])
        fields[2] += 1
        return os.stat_result(fields)
    replace = os.replace

    def across(src, dst, *args, **kwargs):  # as the kernel refuses a rename from one file system to another
        if ".new-" in str(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return replace(src, dst, *args, **kwargs)
    monkeypatch.setattr(os, "stat", other_device)
    monkeypatch.setattr(os, "replace", across)
    assert main(_propagate_args(frames, ann, link, weights)) == 0  # straight into the output instead
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "disk").iterdir()) == ["masks"]
    assert all(p.stat().st_mtime_ns > first[p.name] for p in real.glob("*.png"))
    assert "Invalid cross-device" not in capsys.readouterr().err


def test_a_coco_file_that_cannot_be_written_is_refused_before_the_run(tmp_path, clip, weights, capsys,
                                                                     monkeypatch):
    """QA pass 79: `--coco` into a read-only folder failed after the whole run."""
    from stm_core import cli

    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False if Path(path) == locked else real(path, mode))
    out = tmp_path / "out"
    assert main(_propagate_args(*clip, out, weights, "--coco", str(locked / "c.json"))) == 2
    assert capsys.readouterr().err == f"error: --coco {locked / 'c.json'}: its folder cannot be written\n"
    assert not out.exists()


def test_run_as_the_program_a_late_ctrl_c_is_ignored_and_memory_errors_are_one_line(tmp_path, capsys,
                                                                                    monkeypatch):
    """QA pass 79: Ctrl+C after a run had written everything killed the process without a word, and running
    out of memory while torch loaded gave a traceback."""
    import signal

    from stm_core import cli

    def short_of_memory(args):
        raise MemoryError
    monkeypatch.setattr(cli, "cmd_evaluate", short_of_memory)
    monkeypatch.setattr(sys, "argv", ["stm-annotate", "evaluate", str(tmp_path), str(tmp_path)])
    before = {each: signal.getsignal(each) for each in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert main() == 2
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # until the process exits
        assert signal.getsignal(signal.SIGTERM) is before[signal.SIGTERM]  # QA pass 85: it stayed ignored
    finally:
        for each, handler in before.items():
            signal.signal(each, handler)
    assert capsys.readouterr().err == "error: out of system memory: close other programs, or lower --max-memory " \
                                      "and --process-height\n"
    assert main(["evaluate", str(tmp_path), str(tmp_path)]) == 2  # called as a function: its handler comes back
    assert signal.getsignal(signal.SIGINT) is before[signal.SIGINT]
    capsys.readouterr()

    def unmapped(args):  # QA pass 81: OpenCV's libraries could not be mapped, just after torch's were
        raise ImportError("libavif.so.15: failed to map segment from shared object")
    monkeypatch.setattr(cli, "cmd_evaluate", unmapped)
    assert main(["evaluate", str(tmp_path), str(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: out of system memory: close other programs, or lower --max-memory " \
                                      "and --process-height (libavif.so.15: failed to map segment from shared object)\n"


def test_one_mask_left_from_an_earlier_run_is_named_in_the_singular(tmp_path, capsys):
    """QA pass 81: "1 masks … are"."""
    import warnings

    from stm_core.cli import _name_earlier_left

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _name_earlier_left(tmp_path, {"00000", "00007"}, ["00000", "00001"], {0, 1})
    assert [str(w.message) for w in caught] == [f"1 mask in {tmp_path} is from an earlier run and was not "
                                                 "rewritten by this one (first: 00007.png); a fresh --output "
                                                 "holds this run's masks alone"]
