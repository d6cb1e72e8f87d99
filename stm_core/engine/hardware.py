"""Where the network runs and in which number format: both depend on what this machine's processor can do."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ..errors import StmError


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise StmError("CUDA was requested but no CUDA device is available: choose the CPU as the device "
                       "(--device cpu, or the Device setting)")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise StmError(f"unknown device '{name}' (use auto, cpu or cuda)")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware: an x86 CPU with AVX-512 BF16 (every AMX CPU has it too).

    Autocast to bf16 pays only there: 2-3x faster than fp32 with AVX-512 BF16, but about 10x slower than fp32
    on an AVX2 CPU, where every bf16 convolution is emulated (BENCHMARKS.md). Elsewhere (ARM, a PyTorch without the
    probe) bf16 was never measured, so the engine computes in fp32, which is never slow."""
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return platform.machine().lower() in ("x86_64", "amd64") and probe is not None and bool(probe())


def prepare_compute_thread(threads: int | None = None) -> None:
    """Set up the calling thread to run the network: `threads` intra-op threads (None: as it is) and denormals
    flushed to zero.

    Both are per-thread states. Arithmetic on denormal floats (below 1.2e-38) takes a microcode assist on Intel
    CPUs, and the memory read's softmax over thousands of memory positions yields many: on a Xeon the fp32
    weighted sum of memory values ran 4x slower, a 480 px read and decode with 10 memory frames 970 ms instead of
    71 ms (BENCHMARKS.md). Flushing them (FTZ/DAZ) changes nothing a mask can show. The OpenMP workers a thread
    starts at its first parallel operation inherit its setting, so this comes before the thread's first
    operation."""
    if threads is not None:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)


_count_before_share: int | None = None  # while a run shares the cores with its look-ahead thread: the full count


def caller_threads() -> int:
    """The intra-op thread count the calling thread asks the network thread to use: its own, or the full count
    while a run shares the cores (torch's count is process-wide, so a thread started meanwhile reads the share)."""
    return _count_before_share or torch.get_num_threads()


@contextmanager
def cores_shared(share: bool) -> Iterator[int]:
    """Yields the intra-op thread count for a run's look-ahead thread: with `share`, half the calling thread's
    (which keeps the rest meanwhile), else all of them. The full count comes back after: torch's count is also
    the one every new thread starts with, so a run that kept half made every later run and adaptation use one
    core of two (QA pass 80)."""
    global _count_before_share
    threads = caller_threads()  # the full count also where another run shares the cores now (QA pass 85)
    if not share:
        yield threads
        return
    _count_before_share = threads
    torch.set_num_threads(threads - threads // 2)
    try:
        yield max(1, threads // 2)
    finally:
        torch.set_num_threads(threads)
        _count_before_share = None


def _cuda_has_bf16() -> bool:
    """Native bf16 (Ampere and later); older cards only emulate it, so they compute in fp32."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # older PyTorch: no such argument
        return bool(torch.cuda.is_bf16_supported())


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced precision that is faster than fp32 on `device`, or None where fp32 is the fastest."""
    if device.type == "cuda":
        return torch.bfloat16 if _cuda_has_bf16() else None
    return torch.bfloat16 if cpu_has_bf16() else None


def compute_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """What `autocast(device, enabled)` computes in: the fast reduced precision, or None for fp32."""
    return autocast_dtype(device) if enabled else None


def autocast(device: torch.device, enabled: bool = True) -> torch.autocast:
    """Autocast to `device`'s fast precision when `enabled` and the hardware has one, else a no-op context."""
    return autocast_to(device, compute_dtype(device, enabled))


def autocast_to(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """Autocast to `dtype` on `device`; None computes in fp32 (a no-op context)."""
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def describe_precision(device: torch.device, enabled: bool = True) -> str:
    """'bf16' or 'fp32', as `autocast(device, enabled)` computes: for benchmark tables and logs."""
    return precision_name(compute_dtype(device, enabled))


def precision_name(dtype: torch.dtype | None) -> str:
    """The short name of what `autocast_to(device, dtype)` computes in: 'fp32' for None."""
    return {None: "fp32", torch.bfloat16: "bf16"}.get(dtype, str(dtype).removeprefix("torch."))
