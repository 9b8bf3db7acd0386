import numpy as np
import pytest

from biojepa.data.schema import Condition
from biojepa.errors import DataError
from biojepa.sim.config import InterventionConfig, NetworkConfig
from biojepa.sim.grn import generate_network
from biojepa.sim.interventions import expand, make_compounds, make_guides


@pytest.fixture(scope="module")
def parts():
    net = generate_network(NetworkConfig(n_genes=100), np.random.default_rng(0))
    cfg = InterventionConfig(n_compounds=5, ineffective_fraction=0.2)
    guides = make_guides(net.n_genes, cfg, np.random.default_rng(1))
    compounds = make_compounds(net, cfg, np.random.default_rng(2))
    return net, guides, compounds, {g: i for i, g in enumerate(net.genes)}


def test_guides_vary_and_duds_barely_work(parts):
    _, guides, _, _ = parts
    good = guides.efficiency[~guides.ineffective]
    assert good.std() > 0.03 and good.mean() > 0.6
    assert guides.efficiency[guides.ineffective].max() <= 0.1
    assert (guides.fold >= 1.0).all()


def test_crispri_variants_one_per_guide(parts):
    _, guides, compounds, index = parts
    v = expand([Condition("G0003", "c", "crispri")], index, guides, compounds, 0.3)
    assert len(v.condition) == 2 and np.isclose(v.weight.sum(), 1.0)
    assert np.allclose(v.mrna[:, 2], 1.0 - guides.efficiency[2])
    assert (v.activity == 1.0).all()
    assert v.guide == ("G0003_g1", "G0003_g2")


def test_knockout_splits_edited_and_unedited_cells(parts):
    _, guides, compounds, index = parts
    v = expand([Condition("G0003", "c", "crispr_ko")], index, guides, compounds, 0.3)
    edited = v.activity[:, 2] == 0.0
    assert np.isclose(v.weight[edited].sum(), guides.efficiency[2].mean())
    assert np.allclose(v.mrna[edited, 2], 0.3) and np.allclose(v.mrna[~edited, 2], 1.0)


def test_double_takes_the_product_of_guides(parts):
    _, guides, compounds, index = parts
    v = expand([Condition("G0003+G0007", "c", "crispra")], index, guides, compounds, 0.3)
    assert len(v.condition) == 4 and np.isclose(v.weight.sum(), 1.0)
    assert (v.mrna[:, [2, 6]] > 1.0).all()


def test_compound_inhibition_rises_with_dose(parts):
    net, guides, compounds, index = parts
    low, high = (
        expand([Condition("CPD001", "c", "compound", dose)], index, guides, compounds, 0.3).activity[0]
        for dose in (1.0, 1e5)
    )
    on = compounds.targets[0][0]
    assert net.is_regulator[on]
    assert 1.0 >= low[on] > high[on] >= 0.0
    assert (high <= low + 1e-12).all()
    assert compounds.descriptors.shape == (5, 16)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (Condition("NOPE", "c", "crispri"), "not in the simulated network"),
        (Condition("CPD999", "c", "compound", 10.0), "unknown compound"),
        (Condition("CPD001", "c", "compound", 0.0), "dose > 0"),
        (Condition("G0003", "c", "rnai"), "perturbation_type"),
    ],
)
def test_bad_conditions_are_clear_errors(parts, condition, message):
    _, guides, compounds, index = parts
    with pytest.raises(DataError, match=message):
        expand([condition], index, guides, compounds, 0.3)
