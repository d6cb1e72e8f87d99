"""Shared test fixtures. The read-only data folder `shared/` sits next to the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


def require_shared(*parts: str) -> Path:
    """Path inside shared/, or skip the calling test when that data is not on this machine."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


@pytest.fixture
def shared_dir() -> Path:
    """The shared data folder (the test is skipped when it is absent)."""
    return require_shared()
