"""Weights files: the official STM layout loads strictly; broken or foreign files give clear errors."""

from __future__ import annotations

import re
import zipfile

import pytest
import torch

from stm_core.errors import WeightsError
from stm_core.model.checkpoint import DEFAULT_WEIGHTS, load_model, save_weights
from stm_core.model.config import STM_R50, STM_SMALL
from stm_core.model.stm import STM


@pytest.fixture(scope="module")
def official_state() -> dict[str, torch.Tensor]:
    """A state dict with the official names (module. prefix) and shapes, as nn.DataParallel saves it."""
    torch.manual_seed(0)
    return {"module." + k: v.clone() for k, v in STM(STM_R50).state_dict().items()}


@pytest.mark.parametrize("prefix", [True, False])
def test_official_layout_loads_strictly(tmp_path, official_state, prefix):
    state = official_state if prefix else {k[len("module."):]: v for k, v in official_state.items()}
    path = tmp_path / "STM_weights.pth"
    torch.save(state, path)
    model = load_model("stm-r50", path)
    key = "Decoder.pred2.weight"
    assert torch.equal(model.state_dict()[key], official_state["module." + key])


def _meta(path) -> dict:
    """The training provenance a weights file of ours keeps."""
    return torch.load(path, weights_only=True)["meta"]


def test_missing_and_unexpected_keys_are_named(tmp_path, official_state):
    state = dict(official_state)
    del state["module.Decoder.pred2.bias"]
    state["module.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(WeightsError, match=r"missing keys \(first: Decoder.pred2.bias.*unexpected keys \(first: extra"):
        load_model("stm-r50", tmp_path / "w.pth")


def test_weights_holding_nan_or_infinity_are_refused(tmp_path, official_state):
    """QA pass 30: one NaN weight was taken, and every mask came out empty without a word."""
    state = dict(official_state)
    weight = state["module.Decoder.pred2.weight"].clone()
    weight[0, 0, 0, 0] = float("nan")
    state["module.Decoder.pred2.weight"] = weight
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(WeightsError, match=r"w.pth is damaged: 1 of its tensors hold NaN or infinite values "
                                           r"\(first: Decoder.pred2.weight\)"):
        load_model("stm-r50", tmp_path / "w.pth")


def test_weights_load_as_the_model_they_fit(tmp_path, official_state):
    """Sixth CLI QA pass: the official file without `--model stm-r50` failed with 280 unexpected keys and no
    hint. A bare state dict now loads as the configuration it fits (the CLI still refuses a `--model` that
    disagrees: test_cli's model_mismatch); a broken one is described against the closest configuration."""
    save_weights(STM(STM_SMALL), tmp_path / "small.pt")
    torch.save(STM(STM_SMALL).state_dict(), tmp_path / "bare_small.pt")
    torch.save(official_state, tmp_path / "STM_weights.pth")
    assert load_model("stm-r50", tmp_path / "bare_small.pt").cfg == STM_SMALL
    assert load_model("stm-small", tmp_path / "STM_weights.pth").cfg == STM_R50
    assert load_model("stm-r50", tmp_path / "small.pt").cfg == STM_SMALL  # our own format says what it is
    broken = dict(official_state)
    broken["module.Decoder.pred2.weight"] = torch.zeros(3, 3)
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(WeightsError, match=r"does not fit model stm-r50: 1 shape mismatches \(first: "
                                           r"Decoder.pred2.weight \(3, 3\) in the file, \(2, 256, 3, 3\) in the model"):
        load_model("stm-small", tmp_path / "broken.pth")


def test_a_doubled_prefix_loads_a_doubled_name_is_refused_and_a_misfit_is_told_against_the_model_asked_for(
        tmp_path, official_state):
    """QA pass 89: `module.module.` keys (a wrapped wrapper) were 472 unexpected keys reported against stm-small
    though stm-r50 was asked for; a key held with and without the prefix loaded the later one without a word."""
    torch.save({"module." + k: v for k, v in official_state.items()}, tmp_path / "double.pth")
    model = load_model("stm-r50", tmp_path / "double.pth")
    assert torch.equal(model.state_dict()["Decoder.pred2.weight"], official_state["module.Decoder.pred2.weight"])
    torch.save({"_orig_mod." + k: v for k, v in official_state.items()}, tmp_path / "compiled.pth")  # torch.compile
    assert torch.equal(load_model("stm-r50", tmp_path / "compiled.pth").state_dict()["Decoder.pred2.weight"],
                       official_state["module.Decoder.pred2.weight"])
    twice = {**official_state, "Decoder.pred2.bias": torch.zeros(2)}
    torch.save(twice, tmp_path / "twice.pth")
    with pytest.raises(WeightsError, match=r"twice.pth holds Decoder.pred2.bias twice"):
        load_model("stm-r50", tmp_path / "twice.pth")
    torch.save({"encoder." + k[len("module."):]: v for k, v in official_state.items()}, tmp_path / "other.pth")
    for asked in ("stm-r50", "stm-small"):  # fits neither: told against the one asked for
        with pytest.raises(WeightsError, match=f"does not fit model {asked}: "):
            load_model(asked, tmp_path / "other.pth")


def test_truncated_and_non_checkpoint_files(tmp_path):
    save_weights(STM(STM_SMALL), tmp_path / "ok.pt", {"step": 3})
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("not a checkpoint")
    for name in ("trunc.pt", "text.pt", "absent.pt"):
        with pytest.raises(WeightsError, match=name.split(".")[0]):
            load_model("stm-small", tmp_path / name)
    assert _meta(tmp_path / "ok.pt") == {"step": 3}
    with zipfile.ZipFile(tmp_path / "other.pt", "w") as archive:  # QA pass 73: torch's internals were quoted
        archive.writestr("readme.txt", "not weights")
    for name, reason in (("trunc.pt", "damaged, cut short, or another kind of file"),
                         ("other.pt", "a zip archive that is not a whole PyTorch checkpoint")):
        with pytest.raises(WeightsError, match=f"{name} is not a readable PyTorch checkpoint \\({reason}"):
            load_model("stm-small", tmp_path / name)


def test_a_training_checkpoint_as_weights_gives_its_latest_weights_and_says_where_the_run_s_files_are(tmp_path):
    """Seventh CLI QA pass: the trainer's last.pt was "not a weights file of this program or of STM". QA pass 37:
    after Ctrl+C it was refused with advice to use best.pt or final.pt, which a stopped run has not written; its
    weights are now used (read as safely as a weights file), with a warning saying where the run's files are."""
    import pathlib

    from stm_core.train.trainer import TrainConfig, _save_checkpoint

    model = STM(STM_SMALL)
    model.recommended_height = 144
    path = tmp_path / "run" / "last.pt"
    path.parent.mkdir()
    _save_checkpoint(path, model, torch.optim.AdamW(model.parameters()), 3, 0.5, TrainConfig(), -1.0)
    with pytest.warns(UserWarning, match=r"run/last.pt is a training checkpoint: its weights at step 3 are used; the "
                                         r"run writes best.pt and final.pt when it ends: rerun its train command"):
        loaded = load_model("stm-small", path)
    key = "KV_Q_r4.Key.weight"
    assert torch.equal(loaded.state_dict()[key], model.state_dict()[key]) and loaded.recommended_height == 144
    save_weights(model, path.parent / "best.pt")
    with pytest.warns(UserWarning, match=r"the run's weights files are best.pt in the same folder"):
        load_model("stm-small", path)
    torch.save({"model": model.state_dict(), "optimizer": {}, "rng": {"other": pathlib.PurePosixPath("x")}}, path)
    with pytest.raises(WeightsError, match=r"run/last.pt is a training checkpoint of this program whose weights "
                                           r"cannot be read safely; the run's weights files are best.pt"):
        load_model("stm-small", path)


def test_half_precision_round_trip(tmp_path):
    model = STM(STM_SMALL)
    save_weights(model, tmp_path / "w.pt")
    loaded = load_model("stm-small", tmp_path / "w.pt")
    a, b = model.state_dict()["KV_Q_r4.Key.weight"], loaded.state_dict()["KV_Q_r4.Key.weight"]
    assert torch.allclose(a, b, atol=1e-3)


def test_continued_weights_keep_their_working_heights(tmp_path):
    """Training continued from the shipped file writes a file the engine runs at the same working heights."""
    model = STM(STM_SMALL)
    save_weights(model, tmp_path / "parent.pt", {"process_height": 144, "adapt_process_height": 240})
    child = load_model("stm-small", tmp_path / "parent.pt")
    save_weights(child, tmp_path / "child.pt", {"step": 9})
    assert _meta(tmp_path / "child.pt") == {"process_height": 144, "adapt_process_height": 240, "step": 9}
    tensors = torch.load(tmp_path / "child.pt", weights_only=True)["state_dict"].values()
    assert all(t.device.type == "cpu" for t in tensors)


@pytest.mark.parametrize("config,meta,message", [
    ({"key_dim": -4}, {}, r"bad.pt has a broken model configuration, not the settings of an STM network "
                          r"\(key_dim must be a whole number above 0, not -4\)"),
    ({"block": "weird"}, {}, r"bad.pt has a broken model configuration, not the settings of an STM network "
                             r"\(block must be 'bottleneck' or 'basic'"),
    ({}, {"process_height": "abc"}, r"bad.pt has a broken meta.process_height: 'abc' \(a working height is a whole "
                                    r"number of at least 64 px"),
    ({}, {"adapt_process_height": 8}, r"bad.pt has a broken meta.adapt_process_height: 8 ")])
def test_hand_edited_configurations_and_heights_are_refused_by_name(tmp_path, config, meta, message):
    """QA pass 37: key_dim -4 was a raw RuntimeError, an unknown block loaded as a basic one, a process_height of
    'abc' a bare "invalid literal for int()" naming no file, and one of 8 px was taken."""
    save_weights(STM(STM_SMALL), tmp_path / "bad.pt", meta)
    obj = torch.load(tmp_path / "bad.pt", weights_only=True)
    obj["config"].update(config)
    torch.save(obj, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match=message):
        load_model("stm-small", tmp_path / "bad.pt")


def test_weights_of_an_unknown_format_are_refused_and_every_message_gives_the_path(tmp_path):
    """QA pass 79: a file of format 999 loaded without a word, and some messages named the file, others its path."""
    save_weights(STM(STM_SMALL), tmp_path / "future.pt", {})
    obj = torch.load(tmp_path / "future.pt", weights_only=True)
    obj["format"] = 999
    torch.save(obj, tmp_path / "future.pt")
    with pytest.raises(WeightsError, match=rf"^{re.escape(str(tmp_path / 'future.pt'))} is in weights format 999, "
                                           r"which this version does not read \(it reads 'stm-annotator/1'\)"):
        load_model("stm-small", tmp_path / "future.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(WeightsError, match=rf"^{re.escape(str(tmp_path / 'list.pt'))} holds no state dict"):
        load_model("stm-small", tmp_path / "list.pt")


def test_shipped_default_weights_load():
    if not DEFAULT_WEIGHTS.exists():
        pytest.fail(f"shipped weights missing: {DEFAULT_WEIGHTS}")
    assert DEFAULT_WEIGHTS.stat().st_size <= 16 * 2**20
    model = load_model()
    assert model.cfg.name == "stm-small"
    assert _meta(DEFAULT_WEIGHTS).get("step", 0) > 0
