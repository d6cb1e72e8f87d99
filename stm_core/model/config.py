"""Named network configurations: the paper's ResNet-50 STM and the small CPU default the project ships."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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
