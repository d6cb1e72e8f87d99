"""The number format follows the processor: bf16 only where the hardware computes it, since emulated bf16 on an
AVX2 CPU is about 10x slower than fp32 (a CLI run over a 16-frame clip: 190 s in bf16, 17 s in fp32)."""

from __future__ import annotations

import pytest
import torch

from stm_core.engine import hardware
from stm_core.engine.propagator import Propagator
from stm_core.engine.run_ahead import run_ahead
from stm_core.engine.settings import EngineSettings

from .engine_helpers import on_new_thread, surviving_denormals

CPU = torch.device("cpu")


@pytest.mark.parametrize("machine,avx512_bf16,expected", [("x86_64", False, None), ("x86_64", True, torch.bfloat16),
                                                          ("aarch64", True, None)])
def test_cpus_use_bf16_only_with_avx512_bf16(monkeypatch, machine, avx512_bf16, expected):
    monkeypatch.setattr(hardware.platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert hardware.autocast_dtype(CPU) is expected
    assert hardware.describe_precision(CPU) == ("fp32" if expected is None else "bf16")
    assert hardware.describe_precision(CPU, enabled=False) == "fp32"


@pytest.mark.parametrize("native", [False, True])
def test_gpus_that_only_emulate_bf16_compute_in_fp32(monkeypatch, native):
    """Before Ampere (the paper's 1080 Ti, a T4, a V100) PyTorch emulates bf16; those cards get fp32."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native or including_emulation)
    assert hardware.autocast_dtype(torch.device("cuda")) is (torch.bfloat16 if native else None)


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_the_engine_computes_in_the_chosen_precision(monkeypatch, dtype):
    """The propagator's compute context is fp32 where the hardware has no fast bf16, bf16 where it has, and
    fp32 whenever `fast` is off."""
    monkeypatch.setattr(hardware, "autocast_dtype", lambda device: dtype)
    x = torch.ones(1, 1, 4, 4)
    conv = torch.nn.Conv2d(1, 1, 1)
    for fast in (True, False):
        with Propagator(EngineSettings(device="cpu", fast=fast, random_init=True))._compute():
            out = conv(x)
        assert out.dtype == (dtype if fast and dtype is not None else torch.float32)


@pytest.mark.skipif(not on_new_thread(lambda: torch.set_flush_denormal(True)),
                    reason="this CPU cannot flush denormals")
def test_the_network_threads_flush_denormals():
    """Denormals made the fp32 memory read 4x slower on an Intel CPU (970 ms instead of 71 ms at 480 px with
    10 memory frames): a thread set up for the network flushes them, on all its OpenMP workers."""
    assert on_new_thread(lambda: (hardware.prepare_compute_thread(2), surviving_denormals())[1]) == 0

    def computing():
        yield surviving_denormals()
    assert list(run_ahead(computing(), 1)) == [0]


def test_overlapping_runs_that_share_the_cores_give_the_full_count_back():
    """QA pass 85: a second run sharing the cores while the first did took the halved count for the full one,
    and put it back last: one core of two for good."""
    import threading

    from stm_core.engine.hardware import cores_shared

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with cores_shared(True):
            first_in.set()
            second_in.wait()
        first_out.set()

    def second() -> None:
        first_in.wait()
        with cores_shared(True):
            second_in.set()
            first_out.wait()
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seen: list[int] = []
        reader = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        reader.start()
        reader.join()
        assert seen == [2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
