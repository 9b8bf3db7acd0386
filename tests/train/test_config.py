import pytest

from biojepa.errors import DataError
from biojepa.train.config import TrainConfig, default_config


def test_packaged_configs_load():
    config = default_config()
    assert config.pretrain.regularizer == "sigreg" and config.model["latent_dim"] == 128
    assert default_config("fast").dynamics.epochs > 0
    with pytest.raises(DataError, match="no packaged config"):
        default_config("nope")


def test_toml_round_trip_and_unknown_keys(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("seed = 4\n[dynamics]\nepochs = 3\n")
    config = TrainConfig.from_toml(path)
    assert config.seed == 4 and config.dynamics.epochs == 3 and config.decoder.epochs == 2
    assert TrainConfig.from_dict(config.to_dict()) == config
    path.write_text("[dynamics]\nepoch = 3\n")
    with pytest.raises(DataError, match=r"unknown config key\(s\) \['epoch'\] in \[dynamics\]"):
        TrainConfig.from_toml(path)
    path.write_text("seed = ")
    with pytest.raises(DataError, match="not valid TOML"):
        TrainConfig.from_toml(path)
    with pytest.raises(DataError, match="does not exist"):
        TrainConfig.from_toml(tmp_path / "missing.toml")


def test_ema_vicreg_config_differs_from_default_only_in_stage_a_teacher():
    default, ema = default_config(), default_config("ema_vicreg")
    assert default.pretrain.teacher == "none" and default.pretrain.regularizer == "sigreg"
    assert ema.pretrain.teacher == "ema" and ema.pretrain.regularizer == "vicreg"
    assert (ema.pretrain.ema_momentum, ema.pretrain.ema_momentum_end) == (0.996, 1.0)
    ema.pretrain.regularizer, ema.pretrain.teacher = "sigreg", "none"
    assert ema == default
    assert TrainConfig.from_dict(ema.to_dict()) == ema


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"teacher": "byol"}, r"teacher = 'byol' is not supported; use one of \['none', 'ema'\]"),
        ({"regularizer": "barlow"}, r"regularizer = 'barlow' is not supported"),
        ({"teacher": "ema", "ema_momentum": 1.2}, r"ema_momentum = 1.2 must be a number in \[0, 1\]"),
        ({"ema_momentum_end": "high"}, r"ema_momentum_end = 'high' must be a number"),
    ],
)
def test_bad_pretrain_values_are_rejected(values, message):
    with pytest.raises(DataError, match=message):
        TrainConfig.from_dict({"pretrain": values})


def test_program_tokens_config_differs_from_default_only_in_the_encoder():
    default, tokens = default_config(), default_config("program_tokens")
    assert "encoder" not in default.model and tokens.model["encoder"] == "program_tokens"
    assert (tokens.model["n_programs"], tokens.model["encoder_hidden"]) == (64, 64)
    for key in ("encoder", "n_programs", "encoder_hidden"):
        del tokens.model[key]
    tokens.model["encoder_hidden"] = default.model["encoder_hidden"]
    assert tokens == default


def test_unknown_encoder_is_rejected():
    with pytest.raises(
        DataError, match=r"encoder = 'cnn' is not supported; use one of \['mlp', 'program_tokens'\]"
    ):
        TrainConfig.from_dict({"model": {"encoder": "cnn"}})
