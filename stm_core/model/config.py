"""Named network configurations: the paper's ResNet-50 STM and the small CPU default the project ships."""

from __future__ import annotations

from dataclasses import asdict, dataclass

MIN_PROCESS_HEIGHT = 64
"""Below this working height the network sees too few feature cells (1/16 of the frame) to segment anything."""


@dataclass(frozen=True)
class StmConfig:
    """Shape of one STM network; the same module code builds every configuration.

    block: "bottleneck" (ResNet-50, expansion 4) or "basic" (ResNet-18 style, expansion 1).
    layers/widths: blocks and planes of res2, res3, res4 (strides 4, 8, 16).
    """

    name: str
    block: str
    layers: tuple[int, int, int]
    widths: tuple[int, int, int]
    stem: int
    key_dim: int
    value_dim: int
    decoder_dim: int

    def __post_init__(self) -> None:
        """A hand-edited weights file's configuration is refused here, by name, not deep in building the network
        (QA pass 37: key_dim -4 was a raw "negative dimension" RuntimeError, an unknown block a basic one)."""
        if self.block not in ("bottleneck", "basic"):
            raise ValueError(f"block must be 'bottleneck' or 'basic', not {self.block!r}")
        for name in ("layers", "widths"):
            values = getattr(self, name)
            if len(values) != 3 or not all(_positive_int(v) for v in values):
                raise ValueError(f"{name} must be three whole numbers above 0, not {values!r}")
        for name in ("stem", "key_dim", "value_dim", "decoder_dim"):
            if not _positive_int(getattr(self, name)):
                raise ValueError(f"{name} must be a whole number above 0, not {getattr(self, name)!r}")

    @property
    def expansion(self) -> int:
        return 4 if self.block == "bottleneck" else 1

    @property
    def channels(self) -> tuple[int, int, int]:
        """Output channels of res2, res3, res4."""
        return tuple(w * self.expansion for w in self.widths)  # type: ignore[return-value]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StmConfig":
        d = dict(d)
        for k in ("layers", "widths"):
            d[k] = tuple(d[k])
        return cls(**d)


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


STM_R50 = StmConfig(name="stm-r50", block="bottleneck", layers=(3, 4, 6), widths=(64, 128, 256), stem=64,
                    key_dim=128, value_dim=512, decoder_dim=256)
STM_SMALL = StmConfig(name="stm-small", block="basic", layers=(2, 2, 2), widths=(32, 64, 128), stem=32,
                      key_dim=64, value_dim=128, decoder_dim=64)

CONFIGS: dict[str, StmConfig] = {c.name: c for c in (STM_R50, STM_SMALL)}


def get_config(name: str) -> StmConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; choose one of {', '.join(CONFIGS)}") from None
