"""Where the network runs and in which number format: both depend on what this machine's processor can do."""

from __future__ import annotations

import platform

import torch

from ..errors import StmError


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise StmError("CUDA was requested but no CUDA device is available; use --device cpu")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise StmError(f"unknown device '{name}' (use auto, cpu or cuda)")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (x86: AVX-512 BF16 or AMX; elsewhere: what oneDNN reports).

    Autocast to bf16 pays only there: 2-3x faster than fp32 with AVX-512 BF16, but 6-9x slower than fp32 on an
    AVX2 CPU, where every bf16 convolution is emulated (scripts/profile_engine.py, BENCHMARKS.md)."""
    avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # probes of newer PyTorch releases
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686") and avx512_bf16 and amx:
        return bool(avx512_bf16() or amx())
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _cuda_has_bf16() -> bool:
    """Native bf16 (Ampere and later): older cards emulate it, slower than fp32, which they get instead."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # older PyTorch: no such argument
        return bool(torch.cuda.is_bf16_supported())


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced precision that is faster than fp32 on `device`, or None where fp32 is the fastest."""
    if device.type == "cuda":
        return torch.bfloat16 if _cuda_has_bf16() else None
    return torch.bfloat16 if cpu_has_bf16() else None


def autocast(device: torch.device, enabled: bool = True) -> torch.autocast:
    """Autocast to `device`'s fast precision when `enabled` and the hardware has one, else a no-op context."""
    dtype = autocast_dtype(device)
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=enabled and dtype is not None)


def describe_precision(device: torch.device, enabled: bool = True) -> str:
    """'bf16' or 'fp32', as `autocast(device, enabled)` computes: for benchmark tables and logs."""
    return "bf16" if enabled and autocast_dtype(device) is not None else "fp32"
