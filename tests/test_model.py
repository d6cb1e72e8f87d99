"""The network: official names and shapes, padding, aggregation, memory read, forward shapes."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stm_core.model.aggregation import aggregate, aggregate_logits
from stm_core.model.config import STM_R50, STM_SMALL
from stm_core.model.memory_read import memory_read
from stm_core.model.padding import pad, pad_amounts, unpad
from stm_core.model.stm import STM, other_objects

from .conftest import require_shared


def test_r50_matches_official_state_dict_keys_and_shapes():
    listing = require_shared("docs", "stm-state-dict-keys.txt")
    ref = {}
    for line in listing.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, rest = line.split(" ", 1)
        ref[key] = tuple(int(x) for x in rest.rsplit(" ", 1)[0].strip("[]").split(",") if x.strip())
    ours = {"module." + k: tuple(v.shape) for k, v in STM(STM_R50).state_dict().items()}
    assert ours == ref
    assert sum(p.numel() for p in STM(STM_R50).parameters()) == 38_925_570


@pytest.mark.parametrize("hw,expected", [((480, 854), (5, 5, 0, 0)), ((1080, 1920), (0, 0, 4, 4)),
                                         ((481, 857), (3, 4, 7, 8)), ((64, 64), (0, 0, 0, 0))])
def test_pad_amounts_follow_official(hw, expected):
    assert pad_amounts(*hw) == expected
    x = torch.rand(1, 3, *hw)
    assert torch.equal(unpad(pad(x, expected), expected), x)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_soft_aggregation_properties(k, seed):
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(k, 6, 7, generator=g)
    agg = aggregate(p, dim=0)
    assert agg.shape == (k + 1, 6, 7)
    assert torch.allclose(agg.sum(0), torch.ones(6, 7), atol=1e-5)
    # background channel is the product of (1 - p_j), before normalisation by the odds
    logits = aggregate_logits(p, dim=0)
    bg = torch.prod(1 - p, 0).clamp(1e-7, 1 - 1e-7)
    assert torch.allclose(logits[0], torch.log(bg / (1 - bg)), atol=1e-4)


def test_aggregation_padding_slot_is_inert_and_gradients_flow():
    p = torch.rand(2, 4, 4, requires_grad=True)
    padded = torch.cat([p, torch.zeros(1, 4, 4)])
    a, b = aggregate(p), aggregate(padded)
    assert torch.allclose(a, b[:3], atol=1e-5)
    assert math.isclose(float(aggregate_logits(padded.detach())[3, 0, 0]), math.log(1e-7 / (1 - 1e-7)), rel_tol=1e-4)
    aggregate_logits(p)[1].sum().backward()
    assert p.grad is not None and p.grad.abs().sum() > 0


def test_memory_read_softmax_over_all_memory_frames_and_sdpa_agrees():
    mk, mv, qk = torch.randn(2, 8, 30), torch.randn(2, 5, 30), torch.randn(2, 8, 12)
    out = memory_read(mk, mv, qk)
    w = torch.softmax(mk.transpose(1, 2) @ qk / math.sqrt(8), dim=1)
    assert torch.allclose(out, mv @ w, atol=1e-5)
    assert torch.allclose(memory_read(mk, mv, qk, use_sdpa=True), out, atol=1e-5)


def test_memory_read_in_blocks_of_queries_gives_the_same_read():
    """QA pass 101: a 4K frame's affinity in one block took 21 GB; read in blocks it is bounded."""
    mk, mv, qk = torch.randn(2, 8, 30), torch.randn(2, 5, 30), torch.randn(2, 8, 13)
    whole = memory_read(mk, mv, qk)
    for budget in (1, 4 * 2 * 30 * 4, 4 * 2 * 30 * 12):  # 1, 4 and 12 queries a block
        assert torch.allclose(memory_read(mk, mv, qk, max_affinity_bytes=budget), whole, atol=1e-6)
        assert torch.allclose(memory_read(mk, mv, qk, top_k=5, max_affinity_bytes=budget),
                              memory_read(mk, mv, qk, top_k=5), atol=1e-6)


def test_other_objects_channel_is_clamped_sum_of_the_others():
    probs = torch.tensor([0.7, 0.6, 0.1]).view(3, 1, 1, 1)
    other = other_objects(probs, None).flatten()
    assert torch.allclose(other, torch.tensor([0.7, 0.8, 1.0]))
    per_sample = other_objects(probs, torch.tensor([0, 0, 1])).flatten()
    assert torch.allclose(per_sample, torch.tensor([0.6, 0.7, 0.0]))


def test_forward_shapes_small_model_multi_object():
    model = STM(STM_SMALL).eval()
    frame = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        k, v = model.memorize(frame, torch.rand(3, 1, 64, 96))
        assert k.shape == (3, STM_SMALL.key_dim, 4, 6) and v.shape == (3, STM_SMALL.value_dim, 4, 6)
        q = model.encode_query(frame)
        fg = model.segment(q, torch.stack([k, k], 2), torch.stack([v, v], 2))
    assert fg.shape == (3, 64, 96) and 0 <= float(fg.min()) and float(fg.max()) <= 1


def test_top_k_read_keeps_only_the_strongest_matches():
    mk, mv, qk = torch.randn(1, 8, 40), torch.randn(1, 5, 40), torch.randn(1, 8, 6)
    assert torch.allclose(memory_read(mk, mv, qk, top_k=40), memory_read(mk, mv, qk), atol=1e-5)
    aff = (mk.transpose(1, 2) @ qk / math.sqrt(8))[0]
    top = aff.topk(3, dim=0)
    expected = mv[0][:, top.indices] * torch.softmax(top.values, 0)  # [5,3,6]
    assert torch.allclose(memory_read(mk, mv, qk, top_k=3)[0], expected.sum(1), atol=1e-5)


@pytest.mark.parametrize("cfg", [STM_SMALL, STM_R50], ids=lambda c: c.name)
def test_folding_batchnorm_keeps_the_function(cfg):
    import copy

    from stm_core.model.fusion import fold_batchnorm

    torch.manual_seed(0)
    model = STM(cfg).eval()
    for m in model.modules():  # non-trivial statistics, so a wrong fold shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    folded = fold_batchnorm(copy.deepcopy(model))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    frame, probs = torch.rand(1, 3, 64, 96), torch.rand(2, 1, 64, 96)
    with torch.no_grad():
        for a, b in zip(model.memorize(frame, probs), folded.memorize(frame, probs)):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * a.abs().max().item())
        qa, qb = model.encode_query(frame), folded.encode_query(frame)
        for name in ("key", "value", "skip3", "skip2"):
            a, b = getattr(qa, name), getattr(qb, name)
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * a.abs().max().item())
    with pytest.raises(ValueError):
        fold_batchnorm(STM(STM_SMALL).train())


def test_memory_encoder_stem_adds_the_frame_mask_and_other_objects_convolutions():
    """The official memory encoder sums conv1(frame), conv1_m(mask) and conv1_o(other); the mask and
    other-objects maps go through one two-channel convolution (faster on the CPU), which must be the same sum."""
    torch.manual_seed(0)
    encoder = STM(STM_SMALL).eval().Encoder_M
    frame, mask, other = torch.rand(1, 3, 64, 96), torch.rand(2, 1, 64, 96), torch.rand(2, 1, 64, 96)
    with torch.no_grad():
        stem = encoder.conv1(encoder.normalise(frame)) + encoder.conv1_m(mask) + encoder.conv1_o(other)
        expected = encoder._stages(stem)[0]
        assert torch.allclose(encoder(frame, mask, other), expected, rtol=1e-4, atol=1e-5)


def test_weights_stored_in_the_autocast_precision_compute_the_same():
    """Autocast casts every fp32 weight at every call; weights stored in bf16 skip the casts and give the
    same numbers bit for bit, while the input normalisation's buffers stay fp32."""
    import copy

    from stm_core.model.fusion import fold_batchnorm, store_weights_in

    torch.manual_seed(0)
    model = fold_batchnorm(STM(STM_SMALL).eval())
    stored = store_weights_in(copy.deepcopy(model), torch.bfloat16)
    assert stored.Decoder.pred2.weight.dtype == torch.bfloat16 and stored.Encoder_Q.mean.dtype == torch.float32
    frame, probs = torch.rand(1, 3, 64, 96), torch.rand(2, 1, 64, 96)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = []
        for net in (model, stored):
            key, value = net.memorize(frame, probs)
            outputs.append((key, value, net.segment(net.encode_query(frame), key.unsqueeze(2), value.unsqueeze(2))))
    for a, b in zip(*outputs):
        assert torch.equal(a, b)


def test_batched_memory_encoding_equals_one_object_at_a_time():
    """Objects share the frame's stem convolution; the result must be what encoding each row alone gives."""
    torch.manual_seed(1)
    model = STM(STM_SMALL).eval()
    frames, probs = torch.rand(2, 3, 32, 48), torch.rand(3, 1, 32, 48)
    rows = torch.tensor([0, 0, 1])
    with torch.no_grad():
        key, value = model.memorize(frames, probs, rows)
        other = other_objects(probs, rows)
        for i, f in enumerate(rows.tolist()):
            k, v = model.KV_M_r4(model.Encoder_M(frames[f:f + 1], probs[i:i + 1], other[i:i + 1]))
            assert torch.allclose(key[i:i + 1], k, atol=1e-5) and torch.allclose(value[i:i + 1], v, atol=1e-5)
