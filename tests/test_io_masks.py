"""Mask files and atomic writes: palette round trips, the formats users bring, size mismatches, folders."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from stm_core.errors import InputError
from stm_core.io.atomic import atomic_path, atomic_write_bytes
from stm_core.io.masks import (DAVIS_PALETTE, read_mask, read_mask_dir, read_masks, write_binary_mask, write_gray,
                               write_mask)

from .conftest import require_shared


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def test_davis_palette() -> None:
    assert DAVIS_PALETTE.shape == (256, 3) and DAVIS_PALETTE.dtype == np.uint8
    assert DAVIS_PALETTE[:9].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128],
                                          [128, 0, 128], [0, 128, 128], [128, 128, 128], [64, 0, 0]]
    assert DAVIS_PALETTE[255].tolist() == [224, 224, 192]
    assert len({tuple(c) for c in DAVIS_PALETTE.tolist()}) == 256


def test_palette_round_trip(tmp_path: Path) -> None:
    labels = np.zeros((20, 30), np.uint8)
    labels[2:8, 3:9] = 1
    labels[10:15, 5:25] = 3
    labels[0, 0] = 254
    write_mask(tmp_path / "m.png", labels)
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == "P"
        assert np.array_equal(np.array(im.getpalette(), np.uint8).reshape(-1, 3), DAVIS_PALETTE)
    assert np.array_equal(read_mask(tmp_path / "m.png"), labels)
    assert _leftovers(tmp_path) == []


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40)), elements=st.integers(0, 254)))
def test_any_label_map_round_trips_exactly(tmp_path_factory: pytest.TempPathFactory, labels: np.ndarray) -> None:
    path = tmp_path_factory.mktemp("rt") / "00000.png"
    write_mask(path, labels)
    assert np.array_equal(read_mask(path, expected_size=labels.shape), labels)


def test_void_is_background_unless_kept(tmp_path: Path) -> None:
    """QA pass 30: an annotation's void pixels became background without a word, so the mask frame did not
    come back as given; the warning names them once per folder."""
    labels = np.array([[0, 1], [255, 2]], np.uint8)
    write_mask(tmp_path / "v.png", labels)
    with pytest.warns(UserWarning, match=r"v.png marks 1 px void \(255, DAVIS's \"not known\"\): read as background"):
        assert read_mask(tmp_path / "v.png").tolist() == [[0, 1], [0, 2]]
    assert read_mask(tmp_path / "v.png", keep_void=True).tolist() == [[0, 1], [255, 2]]
    folder = tmp_path / "masks"
    folder.mkdir()
    for name in ("00000", "00001", "00002"):
        write_mask(folder / f"{name}.png", labels if name != "00001" else np.array([[0, 1], [1, 2]], np.uint8))
    with pytest.warns(UserWarning) as caught:
        read_mask_dir(folder, ["00000", "00001", "00002"], (2, 2))
    assert [str(w.message) for w in caught] == [
        "2 masks (00000.png, 00002.png) mark pixels void (255, DAVIS's \"not known\"): read as background"]


def test_grayscale_masks(tmp_path: Path) -> None:
    binary = np.array([[0, 255], [255, 0]], np.uint8)
    Image.fromarray(binary).save(tmp_path / "b.png")
    assert read_mask(tmp_path / "b.png").tolist() == [[0, 1], [1, 0]]
    Image.fromarray(binary // 255).save(tmp_path / "01.png")
    assert read_mask(tmp_path / "01.png").tolist() == [[0, 1], [1, 0]]
    labels = np.array([[0, 1], [2, 3]], np.uint8)
    Image.fromarray(labels).save(tmp_path / "l.png")
    assert np.array_equal(read_mask(tmp_path / "l.png"), labels)
    only_two = np.array([[0, 2], [2, 0]], np.uint8)  # a frame where only object 2 is visible stays object 2
    Image.fromarray(only_two).save(tmp_path / "two.png")
    assert np.array_equal(read_mask(tmp_path / "two.png"), only_two)
    Image.fromarray(np.array([[0, 255], [3, 0]], np.uint8)).save(tmp_path / "bad.png")
    with pytest.raises(InputError, match="bad.png"):
        read_mask(tmp_path / "bad.png")


def test_a_faint_probability_map_is_refused_not_read_as_one_object_per_level(tmp_path: Path) -> None:
    """Sessions 15-16 left open: another tool's probability map peaking at 40 became 40 objects (100 at 100)."""
    yy, xx = np.mgrid[0:120, 0:200]
    for peak in (20, 100):
        blob = (peak * np.exp(-(((xx - 100) / 30) ** 2 + ((yy - 60) / 25) ** 2))).astype(np.uint8)
        Image.fromarray(blob).save(tmp_path / f"p{peak}.png")
        with pytest.raises(InputError, match=f"p{peak}.png changes smoothly through grey levels 1..{peak}: a "
                                             "probability map, not labels"):
            read_mask(tmp_path / f"p{peak}.png")
    band = (70 + 13 / (1 + np.exp(((xx - 100) ** 2 + (yy - 60) ** 2) / 400 - 3))).astype(np.uint8)
    assert band.min() == 70 and band.max() == 82 and len(np.unique(band)) == 13
    Image.fromarray(band).save(tmp_path / "band.png")  # QA pass 32: 13 objects, no background
    with pytest.raises(InputError, match="band.png changes smoothly through grey levels 70..82: a probability map"):
        read_mask(tmp_path / "band.png")
    ring = np.where(np.hypot((yy - 60) / 50, (xx - 100) / 80) < 1,
                    np.round(83 - 13 * np.hypot((yy - 60) / 50, (xx - 100) / 80)), 0).astype(np.uint8)
    Image.fromarray(ring).save(tmp_path / "ring.png")  # QA pass 36: the same inside an object on black, 14 rings
    with pytest.raises(InputError, match="ring.png changes smoothly through grey levels 70..83: a probability map"):
        read_mask(tmp_path / "ring.png")
    dots = np.zeros((120, 200), np.uint8)  # ten small objects 70..79 apart: labels, no neighbours to compare
    for k in range(10):
        dots[10:13, 20 * k + 10:20 * k + 13] = 70 + k
    Image.fromarray(dots).save(tmp_path / "dots.png")
    assert np.array_equal(read_mask(tmp_path / "dots.png"), dots)
    grid = np.zeros((120, 200), np.uint8)  # 30 objects with sharp borders stay 30 labels
    for k in range(30):
        row, col = divmod(k, 6)
        grid[row * 24 + 2:row * 24 + 22, col * 33 + 2:col * 33 + 30] = k + 1
    Image.fromarray(grid).save(tmp_path / "grid.png")
    assert np.array_equal(read_mask(tmp_path / "grid.png"), grid)


def test_a_binary_mask_with_soft_or_jpeg_edges_is_one_object_with_a_warning(tmp_path: Path) -> None:
    """QA pass 12: a 0/200 mask resized smoothly held 200 grey levels and became 200 objects (the CLI tracked
    them all, 43 s instead of 5); a JPEG 0/255 mask was refused. Levels found only along edges mark such
    masks; real label maps, even with tiny objects among many, stay labels."""
    import cv2

    truth = np.zeros((120, 160), np.uint8)
    cv2.ellipse(truth, (70, 60), (40, 25), 20, 0, 360, 1, -1)
    soft = cv2.resize(cv2.resize(truth * 200, (80, 60), interpolation=cv2.INTER_LINEAR), (160, 120),
                      interpolation=cv2.INTER_LINEAR)
    Image.fromarray(soft).save(tmp_path / "soft.png")
    Image.fromarray(truth * 255).save(tmp_path / "mask.jpg", quality=80)
    # QA pass 13: at quality 70 background noise of level 1 was taken for the object (nearly the whole frame)
    cv2.imwrite(str(tmp_path / "q70.jpg"), truth * 255, [cv2.IMWRITE_JPEG_QUALITY, 70])
    for name in ("soft.png", "mask.jpg", "q70.jpg"):
        with pytest.warns(UserWarning, match="soft or JPEG edges, read as one object"):
            labels = read_mask(tmp_path / name)
        assert set(np.unique(labels).tolist()) == {0, 1} and (labels != truth).mean() < 0.01
    many = np.zeros((120, 160), np.uint8)
    for k in range(1, 13):
        many[8 * k:8 * k + 6, 10 * k:10 * k + 8] = k
    many[110:112, 150:152], many[115, 5] = 13, 14  # tiny objects: no inner pixel
    Image.fromarray(many).save(tmp_path / "labels.png")
    people_and_birds = np.zeros((120, 160), np.uint8)  # QA pass 15: read as one soft object
    cv2.circle(people_and_birds, (40, 60), 30, 1, -1)
    cv2.circle(people_and_birds, (110, 60), 30, 2, -1)
    for k in range(3, 11):
        people_and_birds[5:7, 10 * k:10 * k + 3] = k  # eight distant 2x3 px birds
    Image.fromarray(people_and_birds).save(tmp_path / "birds.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(read_mask(tmp_path / "labels.png"), many)
        assert np.array_equal(read_mask(tmp_path / "birds.png"), people_and_birds)
    # QA pass 15: a 0/200 mask halved holds only four levels (50, 100, 150, 200): one object, not four
    halved = cv2.resize(truth * 200, (80, 60), interpolation=cv2.INTER_LINEAR)
    Image.fromarray(halved).save(tmp_path / "halved.png")
    with pytest.warns(UserWarning, match="read as one object"):
        assert set(np.unique(read_mask(tmp_path / "halved.png")).tolist()) == {0, 1}


def test_a_palette_mask_of_0_and_255_is_one_object(tmp_path: Path) -> None:
    """Seventh CLI QA pass: official predictions re-saved as palette 0/255 with a grey palette scored J 0, and
    as an annotation "contained no object": 255 was read as DAVIS void. Void beside real labels stays void."""
    grey = Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert("P")
    grey.putpalette([v for i in range(256) for v in (i, i, i)])
    grey.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    assert read_mask(tmp_path / "p.png").tolist() == [[0, 1], [1, 0]]
    davis = np.array([[0, 255], [2, 1]], np.uint8)  # an object boundary marked void
    write_mask(tmp_path / "d.png", davis)
    with pytest.warns(UserWarning, match="marks 1 px void"):
        assert read_mask(tmp_path / "d.png").tolist() == [[0, 0], [2, 1]]


def test_a_frame_of_void_alone_among_labelled_palette_masks_shows_no_object(tmp_path: Path) -> None:
    """QA pass 21: in DAVIS-2017 ground truth a frame where the objects are absent keeps only void (255); read
    alone by the 0/255 rule it became object 1, in annotations and in `evaluate`."""
    for t, mask in enumerate((np.array([[0, 255], [2, 1]], np.uint8), np.array([[0, 255], [255, 0]], np.uint8))):
        write_mask(tmp_path / f"{t:05d}.png", mask)
    with pytest.warns(UserWarning, match=r"2 masks \(00000.png, 00001.png\) mark pixels void"):
        assert read_masks({0: tmp_path / "00000.png", 1: tmp_path / "00001.png"})[1].tolist() == [[0, 0], [0, 0]]
    assert read_masks({0: tmp_path / "00001.png"}, keep_void=True)[0].tolist() == [[0, 1], [1, 0]]  # alone: binary
    assert read_masks(dict(enumerate(sorted(tmp_path.glob("*.png")))), keep_void=True)[1].tolist() == \
        [[0, 255], [255, 0]]
    with pytest.warns(UserWarning, match="mark pixels void"):
        assert read_mask_dir(tmp_path, ["00000", "00001"], (2, 2))[1].tolist() == [[0, 0], [0, 0]]


def test_sixteen_bit_masks(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 65535], [65535, 0]], np.uint16)).save(tmp_path / "b16.png")
    with Image.open(tmp_path / "b16.png") as im:
        assert im.mode.startswith("I")
    assert read_mask(tmp_path / "b16.png").tolist() == [[0, 1], [1, 0]]
    Image.fromarray(np.array([[0, 1], [2, 7]], np.uint16)).save(tmp_path / "l16.png")
    assert read_mask(tmp_path / "l16.png").tolist() == [[0, 1], [2, 7]]
    Image.fromarray(np.array([[0, 300], [2, 7]], np.uint16)).save(tmp_path / "bad16.png")
    with pytest.raises(InputError, match="bad16.png"):
        read_mask(tmp_path / "bad16.png")


def test_rgb_masks(tmp_path: Path) -> None:
    labels = np.array([[0, 1, 2], [3, 4, 5]], np.uint8)
    Image.fromarray(DAVIS_PALETTE[labels]).save(tmp_path / "rgb.png")
    assert np.array_equal(read_mask(tmp_path / "rgb.png"), labels)
    rgba = np.concatenate([DAVIS_PALETTE[labels], np.full((2, 3, 1), 255, np.uint8)], axis=2)
    rgba[0, 0] = [255, 255, 255, 0]  # transparent: background whatever its colour
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert np.array_equal(read_mask(tmp_path / "rgba.png"), labels)
    white = np.zeros((2, 2, 3), np.uint8)
    white[0, 1] = 255
    Image.fromarray(white).save(tmp_path / "bw.png")
    assert read_mask(tmp_path / "bw.png").tolist() == [[0, 1], [0, 0]]
    odd = DAVIS_PALETTE[labels].copy()
    odd[1, 2] = [10, 200, 30]
    Image.fromarray(odd).save(tmp_path / "odd.png")
    with pytest.raises(InputError, match=r"odd\.png.*\(10, 200, 30\)"):
        read_mask(tmp_path / "odd.png")


def test_size_mismatch(tmp_path: Path) -> None:
    labels = np.zeros((20, 30), np.uint8)
    labels[:, 15:] = 2
    write_mask(tmp_path / "m.png", labels)
    with pytest.warns(UserWarning, match=r"m\.png is 30x20, the frames are 31x20"):
        resized = read_mask(tmp_path / "m.png", expected_size=(20, 31))
    assert resized.shape == (20, 31) and set(np.unique(resized)) == {0, 2}
    with pytest.raises(InputError, match=r"m\.png is 30x20, the frames are 40x20: are these the masks of another"):
        read_mask(tmp_path / "m.png", expected_size=(20, 40))
    with pytest.raises(InputError, match=r"the frames are 60x40: scale the masks to 60x40 with nearest-neighbour"):
        read_mask(tmp_path / "m.png", expected_size=(40, 60))  # QA pass 28: half-size masks, no way forward
    with pytest.raises(InputError, match=r"are 20x30: the same size turned a quarter\. If the video is a phone's"):
        read_mask(tmp_path / "m.png", expected_size=(30, 20))  # QA pass 33: made on a portrait video unturned
    with pytest.raises(InputError, match="m.png"):
        read_mask(tmp_path / "m.png", expected_size=(20, 31), tolerance=0)


def test_judo_mask_one_pixel_narrow() -> None:
    path = require_shared("data", "cutie-examples", "masks", "judo", "00005.png")
    with pytest.warns(UserWarning, match=r"00005\.png is 853x480, the frames are 854x480"):
        labels = read_mask(path, expected_size=(480, 854))
    assert labels.shape == (480, 854) and set(np.unique(labels)) == {0, 2}


def test_unreadable_mask(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(InputError, match="x.png"):
        read_mask(tmp_path / "x.png")
    with pytest.raises(InputError, match="missing.png"):
        read_mask(tmp_path / "missing.png")


def test_binary_and_gray_writers(tmp_path: Path) -> None:
    mask = np.array([[True, False], [False, True]])
    write_binary_mask(tmp_path / "b.png", mask)
    with Image.open(tmp_path / "b.png") as im:
        assert im.mode == "L" and np.array(im).tolist() == [[255, 0], [0, 255]]
    prob = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    write_gray(tmp_path / "p.png", prob)
    with Image.open(tmp_path / "p.png") as im:
        assert np.array_equal(np.array(im), prob)
    with pytest.raises(ValueError):
        write_gray(tmp_path / "f.png", prob.astype(np.float32))
    with pytest.raises(ValueError):
        write_mask(tmp_path / "w.png", np.full((2, 2), 300))


def test_read_mask_dir(tmp_path: Path) -> None:
    names = [f"{i:05d}" for i in range(10)]
    a = np.zeros((8, 8), np.uint8)
    a[2:4, 2:4] = 1
    (tmp_path / "m").mkdir()
    write_mask(tmp_path / "m" / f"{names[0]}.png", a)
    write_mask(tmp_path / "m" / f"{names[7]}.png", a * 2)
    write_mask(tmp_path / "m" / "3.png", a)  # plain integer stem: frame 3
    (tmp_path / "m" / ".00004.png.1234abcd.tmp.png").write_bytes(b"crash leftover")
    (tmp_path / "m" / "notes.txt").write_text("ignored")
    half = np.zeros((8, 8), np.uint8)
    half[:, :4] = 1
    Image.fromarray(half * 255).save(tmp_path / "m" / "00005.jpg", quality=90)  # QA pass 12: JPEGs were skipped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a JPEG's grey edges are thresholded with a warning
        masks = read_mask_dir(tmp_path / "m", names, (8, 8))
    assert sorted(masks) == [0, 3, 5, 7]
    assert np.array_equal(masks[7], a * 2) and np.array_equal(masks[5], half)
    write_mask(tmp_path / "m" / "00005.png", a)
    with pytest.raises(InputError, match="00005.jpg and 00005.png .* both for frame 00005|00005.png and 00005.jpg"):
        read_mask_dir(tmp_path / "m", names, (8, 8))
    (tmp_path / "m" / "00005.png").unlink()
    (tmp_path / "m" / "00005.jpg").unlink()

    write_mask(tmp_path / "m" / "extra.png", a)
    with pytest.raises(InputError, match="extra.png names no frame"):
        read_mask_dir(tmp_path / "m", names, (8, 8))
    (tmp_path / "m" / "extra.png").unlink()
    write_mask(tmp_path / "m" / "7.png", a)
    with pytest.raises(InputError, match="both for frame 00007"):
        read_mask_dir(tmp_path / "m", names, (8, 8))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no masks"):
        read_mask_dir(tmp_path / "empty", names, (8, 8))
    with pytest.raises(InputError, match="not found"):
        read_mask_dir(tmp_path / "missing", names, (8, 8))


def test_a_long_videos_mask_folder_is_held_packed_while_read(tmp_path: Path) -> None:
    """Session 17: 2,000 1080p masks took 8 GB while imported (2 MB each as arrays); packed they take ~20 KB."""
    import tracemalloc

    names = [f"{i:05d}" for i in range(30)]
    masks = []
    for i in range(30):
        labels = np.zeros((720, 1280), np.uint8)
        labels[100 + i:300 + i, 200:500] = 1
        labels[400:600, 700 + 5 * i:900 + 5 * i] = 3
        masks.append(labels)
    (tmp_path / "m").mkdir()
    for name, labels in zip(names, masks):
        write_mask(tmp_path / "m" / f"{name}.png", labels)
    seen: list[tuple[int, int]] = []
    tracemalloc.start()
    try:
        read = read_mask_dir(tmp_path / "m", names, (720, 1280), progress=lambda *done: seen.append(done))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * masks[0].nbytes  # a few masks in flight, not 30 (27 MB)
    assert seen == [(i, 30) for i in range(1, 31)]
    assert list(read) == list(range(30)) and all(read.objects(i) == {1, 3} for i in read)
    assert all(np.array_equal(read[i], masks[i]) for i in read)
    read[0][:] = 7  # each read is a fresh array
    assert np.array_equal(read[0], masks[0])


def test_mask_names_match_frame_numbers_however_padded(tmp_path: Path) -> None:
    """Frames numbered from 1 ('0001'..'0006') and a mask '00001.png': it is frame '0001', the first one, not
    the frame at index 1; with frame names that end in no number an integer stem is the index."""
    a = np.ones((8, 8), np.uint8)
    (tmp_path / "m").mkdir()
    write_mask(tmp_path / "m" / "00001.png", a)
    assert list(read_mask_dir(tmp_path / "m", [f"{i:04d}" for i in range(1, 7)], (8, 8))) == [0]
    assert list(read_mask_dir(tmp_path / "m", [f"cam_{i}" for i in range(6)], (8, 8))) == [1]
    # ffmpeg numbers extracted frames from 1 (fifth CLI QA pass: the mask landed on frame_0002)
    assert list(read_mask_dir(tmp_path / "m", [f"frame_{i:04d}" for i in range(1, 9)], (8, 8))) == [0]
    assert list(read_mask_dir(tmp_path / "m", ["a", "b", "c"], (8, 8))) == [1]  # no numbers: the index
    with pytest.raises(InputError, match="could be for frame"):
        read_mask_dir(tmp_path / "m", ["cam1_0001", "cam2_0001"], (8, 8))
    with pytest.raises(InputError, match="names no frame"):
        read_mask_dir(tmp_path / "m", [f"{i:04d}" for i in range(2, 7)], (8, 8))
    with pytest.raises(InputError, match="could be for frame 1 or 0001"):
        read_mask_dir(tmp_path / "m", ["1", "0001", "2"], (8, 8))
    assert list(read_mask_dir(tmp_path / "m", ["²", "x", "0001"], (8, 8))) == [2]  # '²' is a digit, no number
    write_mask(tmp_path / "m" / "00003.png", a)  # QA pass 28: ffmpeg's numbering on a 3-frame video file
    with pytest.raises(InputError, match="the masks count from 1 .as ffmpeg numbers frames. and the frames from 0"):
        read_mask_dir(tmp_path / "m", ["00000", "00001", "00002"], (8, 8))
    (tmp_path / "m" / "00003.png").unlink()
    write_mask(tmp_path / "m" / "1.png", a)  # QA pass 107: "both for frame 0", where the app counts from 1
    with pytest.raises(InputError, match=r"00001.png and 1.png in .* are both for frame cam_1: take one of them out"):
        read_mask_dir(tmp_path / "m", [f"cam_{i}" for i in range(6)], (8, 8))
    (tmp_path / "m" / "1.png").unlink()
    (tmp_path / "export" / "binary").mkdir(parents=True)
    with pytest.raises(InputError, match="it holds the folders binary; give the one with the masks"):
        read_mask_dir(tmp_path / "export", ["00000"], (8, 8))


def test_a_failed_atomic_write_names_the_file_not_its_temporary(tmp_path: Path) -> None:
    from stm_core.io.atomic import atomic_write_bytes

    with pytest.raises(OSError, match=r"cannot write .*missing.s\.json: No such file") as caught:
        atomic_write_bytes(tmp_path / "missing" / "s.json", b"{}")
    assert ".tmp" not in str(caught.value)


def test_a_failed_write_inside_another_atomic_write_names_its_own_file(tmp_path: Path) -> None:
    """QA pass 10: a mask that failed to write while the overlay video was open was reported as the video
    ("cannot write overlay.mp4: cannot write soft/.../00002.png: ...")."""
    with pytest.raises(OSError) as caught:
        with atomic_path(tmp_path / "overlay.mp4") as video:
            video.write_bytes(b"frames")
            atomic_write_bytes(tmp_path / "missing" / "00002.png", b"png")
    assert caught.value.strerror.startswith(f"cannot write {tmp_path / 'missing' / '00002.png'}: ")
    assert "overlay.mp4" not in caught.value.strerror and list(tmp_path.iterdir()) == []  # no temporary left


def test_read_shared_judo_masks() -> None:
    folder = require_shared("data", "cutie-examples", "masks", "judo")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        masks = read_mask_dir(folder, [f"{i:05d}" for i in range(16)], (480, 854))
    assert sorted(masks) == [0, 5, 8, 13]
    assert all(m.shape == (480, 854) for m in masks.values())
    assert [str(w.message) for w in caught if "00005.png" in str(w.message)]


def test_names_near_the_length_limit_are_written(tmp_path: Path) -> None:
    """QA pass 21: a legal 244-character name failed with "File name too long", naming the temporary file."""
    for name in ("m" * 244 + ".png", "é" * 125 + ".png"):  # 248 and 254 bytes
        write_mask(tmp_path / name, np.ones((2, 2), np.uint8))
        assert read_mask(tmp_path / name).tolist() == [[1, 1], [1, 1]]
    assert _leftovers(tmp_path) == []


def test_atomic_write_bytes(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "w.json", b"{}")
    atomic_write_bytes(tmp_path / "w.json", b'{"a": 1}')
    assert (tmp_path / "w.json").read_bytes() == b'{"a": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json"]


def test_atomic_path_keeps_suffix_and_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "00000.png"
    write_mask(target, np.ones((4, 4), np.uint8))
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.endswith(".tmp.png")
            tmp.write_bytes(b"half a png")
            raise RuntimeError("encoder crashed")
    assert np.array_equal(read_mask(target), np.ones((4, 4), np.uint8))
    assert _leftovers(tmp_path) == []
    with pytest.raises(OSError, match="nothing was written"):
        with atomic_path(target):
            pass
    assert target.exists() and _leftovers(tmp_path) == []


def test_failed_mask_write_leaves_old_mask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "m.png"
    write_mask(target, np.full((4, 4), 2, np.uint8))

    def broken_save(self: Image.Image, fp: Path, *args: object, **kwargs: object) -> None:
        Path(fp).write_bytes(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_mask(target, np.zeros((4, 4), np.uint8))
    monkeypatch.undo()
    assert (read_mask(target) == 2).all()
    assert _leftovers(tmp_path) == []


def probability_blob(h: int, w: int) -> np.ndarray:
    """A network's confidence in one round object, 0..1, as a low-resolution float map."""
    yy, xx = np.mgrid[:h, :w]
    return (1 / (1 + np.exp(-(h / 3 - np.hypot(yy - h / 2, xx - w * 0.45)) * 0.3))).astype(np.float32)


def test_a_soft_export_is_one_object_per_map_and_label_maps_stay_labels(tmp_path: Path) -> None:
    """QA pass 17: the app's own soft/object_NNN export imported as masks became 250 objects (every grey level
    a label). QA passes 19 and 20: a rule from the grey values alone read label maps of touching objects with
    consecutive ids (stripes, class bands, 127-254 objects) as one object or none. The export's folder says
    what its maps are; grey label maps stay labels."""
    import cv2

    soft = tmp_path / "export" / "soft" / "object_001"
    soft.mkdir(parents=True)
    (tmp_path / "export" / "objects.json").write_text("[]")
    blob = np.round(cv2.resize(probability_blob(60, 80), (320, 240), interpolation=cv2.INTER_NEAREST) * 255)
    faint = np.round(blob * 0.3)  # an object fading out: nowhere likely
    for name, probabilities in (("00000.png", blob), ("00001.png", faint)):
        Image.fromarray(probabilities.astype(np.uint8)).save(soft / name)
    with pytest.warns(UserWarning, match=r"one object's soft probability maps \(this program's export\): each is"):
        masks = read_mask_dir(soft, ["00000", "00001"], (240, 320))
    assert np.array_equal(masks[0], (blob >= 128).astype(np.uint8)) and not masks[1].any()
    cutie = tmp_path / "workspace" / "soft_masks" / "1"  # Cutie's GUI writes them so, beside masks/ and images/
    cutie.mkdir(parents=True)
    (tmp_path / "workspace" / "masks").mkdir()
    for name, probabilities in (("00000.png", blob), ("00001.png", faint)):
        Image.fromarray(probabilities.astype(np.uint8)).save(cutie / name)
    with pytest.warns(UserWarning, match=r"one object's soft probability maps \(a Cutie workspace\)"):
        assert all(np.array_equal(a, b) for a, b in zip(read_mask_dir(cutie, ["00000", "00001"], (240, 320)).values(),
                                                        masks.values()))
    stripes = np.repeat(np.repeat(np.arange(1, 61, dtype=np.uint8), 5)[None], 40, axis=0)
    bands = np.repeat(np.arange(1, 16, dtype=np.uint8), 16)[:, None].repeat(320, axis=1)  # classes, full frame
    many = np.repeat(np.arange(1, 201, dtype=np.uint8), 4)[None].repeat(30, axis=0)  # 200 touching ids
    crowd = np.zeros((240, 320), np.uint8)  # forty objects on the background, some touching
    rng = np.random.default_rng(0)
    for k in range(1, 41):
        x, y = rng.integers(0, 290), rng.integers(0, 215)
        crowd[y:y + 25, x:x + 30] = k
    for labels in (stripes, bands, many, crowd):
        Image.fromarray(labels).save(tmp_path / "labels.png")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert np.array_equal(read_mask(tmp_path / "labels.png"), labels)


def test_packed_masks_refuse_labels_a_uint8_cast_would_change():
    """QA pass 27: label 256 was packed as 0 and -1 as 255, silently."""
    from stm_core.io.packed_masks import PackedMasks
    packed = PackedMasks()
    packed[0] = np.array([[0, 3], [255, 1]], np.int64)
    assert packed[0].dtype == np.uint8 and packed.objects(0) == {1, 3, 255}
    for bad in (np.array([[0, 256]]), np.array([[-1, 2]]), np.array([[0.5, 1.0]])):
        with pytest.raises(ValueError, match="whole numbers 0..255"):
            packed[1] = bad


def _indexed(path: Path, indices: np.ndarray, colours: list[tuple[int, int, int]]) -> Path:
    im = Image.fromarray(indices.astype(np.uint8), mode="P")
    im.putpalette([v for c in colours for v in c] + [0] * (768 - 3 * len(colours)))
    im.save(path)
    return path


@pytest.mark.parametrize("colours, expected", [
    ([(128, 0, 0), (0, 0, 0)], {0: 1, 1: 0}),  # a red disc met first: index 0, the black background 1
    ([(0, 128, 0), (0, 0, 0), (128, 0, 0)], {0: 2, 1: 0, 2: 1}),  # DAVIS colours in an editor's order
    ([(0, 0, 0), (0, 128, 0), (128, 0, 0)], {0: 0, 1: 2, 2: 1}),  # black first, the objects swapped
    ([(255, 255, 255), (0, 0, 0)], {0: 1, 1: 0}),  # white on black, white met first
    ([(250, 20, 200), (0, 0, 0), (20, 200, 250)], {0: 1, 1: 0, 2: 2}),  # colours of its own: palette order
], ids=["red first", "davis colours reordered", "black first, objects swapped", "white first", "own colours"])
def test_an_indexed_mask_in_an_editors_palette_order_is_read_by_colour(tmp_path, colours, expected):
    """QA pass 46: GIMP, ImageMagick or Pillow's adaptive palette index the colours in the order they meet
    them; a red disc at index 0 on black at index 1 was read inverted, the background tracked as the object."""
    indices = np.zeros((20, 30), np.uint8)
    indices[:, 10:20], indices[:, 20:] = 1, 2 if len(colours) > 2 else 1
    indices[:, :10] = 0
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        labels = read_mask(_indexed(tmp_path / "m.png", indices, colours))
    for index, label in expected.items():
        assert (labels[indices == index] == label).all(), (index, label)


@pytest.mark.parametrize("colours", [
    [tuple(int(v) for v in DAVIS_PALETTE[i]) for i in range(3)],  # DAVIS: the indices are the labels
    [(i, i, i) for i in range(3)],  # a grey palette of label values
    [(0, 0, 0)] * 3,  # no palette to speak of: only the indices tell the objects apart
])
def test_an_indexed_label_map_keeps_its_indices(tmp_path, colours):
    indices = np.zeros((20, 30), np.uint8)
    indices[:, 10:20], indices[:, 20:] = 1, 2
    assert np.array_equal(read_mask(_indexed(tmp_path / "m.png", indices, colours)), indices)


def _disc(h: int = 40, w: int = 60) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - 20) ** 2 + (xx - 30) ** 2 < 12 ** 2


@pytest.mark.parametrize("kind", ["white LA", "black RGBA", "photo cutout", "davis colours"])
def test_a_mask_held_in_the_alpha_channel_is_its_object(tmp_path, kind):
    """QA pass 49: white everywhere with the object in the alpha channel (LA) was read as the whole frame; a
    photo cut out by SAM or rembg (its colours, alpha the mask) was refused for a colour "not in the DAVIS
    palette"; black with alpha said "no object". Masks in DAVIS colours keep their labels."""
    disc = _disc()
    alpha = np.where(disc, 255, 0).astype(np.uint8)
    rng = np.random.default_rng(0)
    if kind == "white LA":
        im = Image.fromarray(np.dstack([np.full_like(alpha, 255), alpha]), mode="LA")
    else:
        rgb = {"black RGBA": np.zeros((*disc.shape, 3), np.uint8),
               "photo cutout": rng.integers(0, 256, (*disc.shape, 3), dtype=np.uint8),
               "davis colours": np.zeros((*disc.shape, 3), np.uint8)}[kind]
        if kind == "davis colours":
            rgb[disc] = DAVIS_PALETTE[1]
            rgb[disc & (np.arange(disc.shape[1]) >= 30)] = DAVIS_PALETTE[2]
        im = Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA")
    im.save(tmp_path / "m.png")
    labels = read_mask(tmp_path / "m.png")
    expected = disc.astype(np.uint8)
    if kind == "davis colours":
        expected[disc & (np.arange(disc.shape[1]) >= 30)] = 2
    assert np.array_equal(labels, expected)


def test_a_grey_mask_saved_indexed_is_read_as_grey(tmp_path):
    """QA pass 49: a blurred 0/255 disc saved as an indexed PNG with a grey palette (index = grey level) became
    some 160 objects, its solid inside (255) read as void."""
    import cv2

    grey = cv2.GaussianBlur(np.where(_disc(), 255, 0).astype(np.uint8), (7, 7), 2)
    _indexed(tmp_path / "m.png", grey, [(i, i, i) for i in range(256)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = read_mask(tmp_path / "m.png")
    assert set(np.unique(labels)) == {0, 1} and any("grey levels" in str(w.message) for w in caught)
    assert abs(int(labels.sum()) - int(_disc().sum())) < 0.1 * _disc().sum()


def test_two_grey_objects_with_soft_edges_are_not_read_as_one(tmp_path):
    """QA pass 49: objects at 128 and 255 in one grey mask, edges anti-aliased, were read as one object "with
    soft or JPEG edges"; without the blur the same mask is refused, as it is now."""
    import cv2

    grey = np.zeros((40, 80), np.uint8)
    grey[10:30, 5:30], grey[10:30, 45:75] = 128, 255
    Image.fromarray(cv2.GaussianBlur(grey, (5, 5), 1.5)).save(tmp_path / "two.png")
    with pytest.raises(InputError, match="neither a 0/255 binary mask nor labels"):
        read_mask(tmp_path / "two.png")
    one = np.where(grey > 0, 255, 0).astype(np.uint8)
    Image.fromarray(cv2.GaussianBlur(one, (5, 5), 1.5)).save(tmp_path / "one.jpg", quality=70)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert set(np.unique(read_mask(tmp_path / "one.jpg"))) == {0, 1}


@pytest.mark.parametrize("saved", ["jpg", "webp", "soft png"])
def test_an_rgb_mask_in_davis_colours_with_jpeg_noise_or_soft_edges_is_read(tmp_path, saved):
    """QA pass 49: DAVIS-coloured RGB masks saved as JPEG or WebP, or anti-aliased, were refused for "colour
    (0, 0, 2) that is not in the DAVIS palette" (JPEG noise), with advice that could not help."""
    import cv2

    labels = np.zeros((48, 96), np.uint8)
    labels[8:40, 8:40], labels[8:40, 56:90] = 1, 2
    rgb = DAVIS_PALETTE[labels].astype(np.uint8)
    if saved == "soft png":
        rgb = cv2.GaussianBlur(rgb, (5, 5), 1.2)
    path = tmp_path / f"m.{saved.split()[-1]}"
    Image.fromarray(rgb).save(path, quality=85)
    with pytest.warns(UserWarning, match="near the DAVIS palette's"):
        read = read_mask(path)
    inside = cv2.erode((labels > 0).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert (read[inside] == labels[inside]).all() and (read != labels).mean() < 0.03
    photo = np.random.default_rng(0).integers(0, 256, (48, 96, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    with pytest.raises(InputError, match="not in the DAVIS palette"):
        read_mask(tmp_path / "photo.png")


@pytest.mark.parametrize("kind", ["pure red", "pure red and green", "davis red and pure red", "rgba two colours"])
def test_a_mask_in_colours_of_its_own_is_refused_not_merged_or_emptied(tmp_path, kind):
    """QA pass 51: since masks in colours near DAVIS's were read by the nearest palette colour, a pure red box
    (255, 0, 0) on black read as no object, and beside a DAVIS red box merged with it; an RGBA mask of two such
    colours on transparency was taken for a cutout, both boxes object 1. Refused, as before."""
    rgb = np.zeros((240, 320, 3), np.uint8)
    rgb[20:60, 20:70] = (255, 0, 0) if kind != "davis red and pure red" else (128, 0, 0)
    if kind != "pure red":
        rgb[120:160, 200:250] = (0, 255, 0) if kind != "davis red and pure red" else (255, 0, 0)
    if kind == "rgba two colours":
        alpha = np.where(rgb.any(-1), 255, 0).astype(np.uint8)
        Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA").save(tmp_path / "m.png")
    else:
        Image.fromarray(rgb).save(tmp_path / "m.png")
    with pytest.raises(InputError, match="not in the DAVIS palette"):
        read_mask(tmp_path / "m.png")


def test_grey_labels_beside_255_are_refused_with_how_to_mark_void_and_a_binary_mask_with_strays_is_read(tmp_path):
    """QA pass 94: grey labels 1..3 with a void strip at 255 were refused while a palette PNG of them is read;
    reading 255 as void then misread binary masks with a speck of 1 or thin objects (QA passes 98-99), so they are
    refused still, the message saying how to mark void plainly. A 0/255 mask with stray 1s stays one object."""
    labels = np.zeros((40, 80), np.uint8)
    labels[5:15, 5:20], labels[20:30, 5:20], labels[5:30, 40:60], labels[:, 76:] = 1, 2, 3, 255
    Image.fromarray(labels).save(tmp_path / "grey.png")
    with pytest.raises(InputError, match="if 255 marks void .* save the mask as a palette PNG"):
        read_mask(tmp_path / "grey.png")
    disc = np.where(_disc(), 255, 0).astype(np.uint8)
    disc[3, 3], disc[-3, 10] = 1, 1
    Image.fromarray(disc).save(tmp_path / "strays.png")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert int(read_mask(tmp_path / "strays.png").sum()) == int(_disc().sum())
    trimap = np.zeros((40, 80), np.uint8)
    trimap[5:35, 10:70], trimap[10:30, 20:60] = 128, 255  # background, unknown, foreground: no label map
    Image.fromarray(trimap).save(tmp_path / "trimap.png")
    with pytest.raises(InputError, match="neither a 0/255 binary mask nor labels"):
        read_mask(tmp_path / "trimap.png")
