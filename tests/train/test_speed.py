from __future__ import annotations

import pytest

from biojepa.data.preprocess import prepare
from biojepa.sim import simulate
from biojepa.train.config import default_config
from biojepa.train.data import CellTable
from biojepa.train.speed import (
    STAGE_NAMES,
    cpu_description,
    matmul_gflops,
    pretrain_step_speed,
    training_run_speed,
)


@pytest.fixture(scope="module")
def tiny():
    return prepare(simulate("tiny", 0))


def _small_config():
    config = default_config("fast")
    config.prior_kinds = []
    config.model.update(
        latent_dim=16, encoder_hidden=32, action_dim=16, predictor_hidden=32, decoder_hidden=32
    )
    config.pretrain.epochs, config.decoder.epochs, config.dynamics.epochs = 2, 2, 3
    config.dynamics.steps_per_epoch = 3
    config.dynamics.patience = 10
    return config


def test_matmul_throughput_is_positive():
    assert matmul_gflops(size=128, repeats=2) > 0


def test_the_cpu_is_described_with_its_vector_capability():
    cpu = cpu_description()
    assert cpu["model"] and isinstance(cpu["torch_capability"], str) and cpu["torch_capability"]
    assert isinstance(cpu["native_bf16"], bool)


def test_pretrain_step_counts_flops_and_cells(tiny):
    table = CellTable.from_anndata(tiny, list(map(str, tiny.var_names)))
    report = pretrain_step_speed(table, steps=1)
    assert report["flops_per_step"] > 0 and report["step_seconds"] > 0
    assert report["cells_per_second"] == pytest.approx(report["batch_cells"] / report["step_seconds"])


def test_training_run_reports_every_stage_with_its_epochs_cells_and_flops(tiny):
    config = _small_config()
    report = training_run_speed(tiny, peak32=100.0, config=config)
    stages = report["stages"]
    assert list(stages) == list(STAGE_NAMES)
    assert [stages[s]["epochs"] for s in STAGE_NAMES] == [2, 2, 3]
    d = config.dynamics
    assert stages["dynamics"]["cells_per_epoch"] == d.steps_per_epoch * (
        2 * d.cell_batch + d.conditions_per_step * d.controls_per_condition
    )
    assert stages["decoder"]["cells_per_epoch"] == report["training_cells"]
    for stage in stages.values():
        assert stage["flops_per_epoch"] > 0 and stage["seconds_per_epoch"] > 0
        assert stage["fraction_of_matmul_peak"] == pytest.approx(stage["gflops_per_second"] / 100.0)
    total = sum(s["seconds"] for s in stages.values()) + report["after_epochs_seconds"]
    assert total <= report["fit_seconds"] + 1e-6
    assert config.dynamics.epochs == 3  # the counted short run works on a copy
