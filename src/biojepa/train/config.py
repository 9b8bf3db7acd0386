"""Training configuration: dataclasses read from (and written back to) TOML / JSON."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path

from biojepa.errors import DataError
from biojepa.models.encoder import check_encoder_kind
from biojepa.train.shrinkage import check_shrinkage

REGULARIZERS = ("sigreg", "vicreg")
TEACHERS = ("none", "ema")


@dataclass
class PretrainConfig:
    """Stage A: self-supervised masked-view pretraining of the state encoder.

    ``teacher = "none"`` (default): the masked views of a cell predict their mean embedding, with SIGReg
    (or VICReg between two views) over cells against collapse. ``teacher = "ema"``: each masked view
    predicts the embedding that an exponential-moving-average copy of the encoder (no gradients) gives
    the full view; its momentum follows a cosine schedule from ``ema_momentum`` at the first step to
    ``ema_momentum_end`` at the last (set them equal for a constant momentum).
    """

    epochs: int = 1
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    regularizer: str = "sigreg"  # or "vicreg"
    sigreg_weight: float = 0.05
    n_slices: int = 256
    mask_fraction: float = 0.3
    n_views: int = 2
    teacher: str = "none"  # or "ema"
    ema_momentum: float = 0.996
    ema_momentum_end: float = 1.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`DataError` for a regulariser, teacher or momentum this version does not know."""
        if self.regularizer not in REGULARIZERS:
            raise DataError(
                f"[pretrain] regularizer = {self.regularizer!r} is not supported; "
                f"use one of {list(REGULARIZERS)}"
            )
        if self.teacher not in TEACHERS:
            raise DataError(
                f"[pretrain] teacher = {self.teacher!r} is not supported; use one of {list(TEACHERS)}"
            )
        for name in ("ema_momentum", "ema_momentum_end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise DataError(f"[pretrain] {name} = {value!r} must be a number in [0, 1]")


@dataclass
class DecoderConfig:
    """Stage B: Gaussian decoder from frozen latents to expression."""

    epochs: int = 2
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4


@dataclass
class DynamicsConfig:
    """Stage C: action encoder, predictor, effect head and inverse head on frozen latents."""

    epochs: int = 8
    steps_per_epoch: int = 20
    cell_batch: int = 256
    conditions_per_step: int = 32
    controls_per_condition: int = 32
    control_fraction: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 1e-3
    latent_weight: float = 1.0
    gene_weight: float = 1.0
    inverse_weight: float = 0.1
    memory_lr_scale: float = 10.0
    patience: int = 6
    memory_shrinkage: str = (
        "auto"  # none | normal | spike_slab | auto (split-half choice, biojepa.train.shrinkage)
    )

    def __post_init__(self) -> None:
        check_shrinkage(self.memory_shrinkage)


@dataclass
class TrainConfig:
    """Everything a training run needs besides the data: seed, model sizes, priors and the three stages."""

    seed: int = 0
    prior_kinds: list[str] = field(default_factory=lambda: ["go", "regulons", "hallmark"])
    model: dict = field(default_factory=dict)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)

    def __post_init__(self) -> None:
        """Reject an unknown ``[model] encoder`` now; the model sizes are checked when it is built."""
        check_encoder_kind(self.model.get("encoder", "mlp"))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Build from a nested dict; unknown keys raise :class:`DataError` naming them."""
        sections = {"pretrain": PretrainConfig, "decoder": DecoderConfig, "dynamics": DynamicsConfig}
        _check_keys(values, {f.name for f in fields(cls)}, "the top level")
        kwargs = {k: v for k, v in values.items() if k not in sections}
        for name, section in sections.items():
            sub = values.get(name, {})
            _check_keys(sub, {f.name for f in fields(section)}, f"[{name}]")
            kwargs[name] = section(**sub)
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        """Read a TOML config file (see ``biojepa/configs/default.toml``)."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"config file {path} does not exist")
        try:
            values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise DataError(f"config file {path} is not valid TOML: {err}") from err
        return cls.from_dict(values)


def packaged_configs() -> list[str]:
    """Names of the configs shipped in ``biojepa/configs`` (``default``, ``fast``, ``ema_vicreg``, ...)."""
    folder = resources.files("biojepa").joinpath("configs")
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def default_config(name: str = "default") -> TrainConfig:
    """A config shipped with the package: ``default``, ``fast``, ``ema_vicreg`` (EMA teacher + VICReg) or
    ``program_tokens`` (the program-token transformer encoder)."""
    resource = resources.files("biojepa").joinpath("configs", f"{name}.toml")
    if not resource.is_file():
        raise DataError(f"no packaged config {name!r}; available: {', '.join(packaged_configs())}")
    return TrainConfig.from_dict(tomllib.loads(resource.read_text()))


def _check_keys(values: dict, allowed: set[str], where: str) -> None:
    unknown = set(values) - allowed
    if unknown:
        raise DataError(f"unknown config key(s) {sorted(unknown)} in {where}; allowed: {sorted(allowed)}")
