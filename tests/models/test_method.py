import numpy as np

from biojepa.data.schema import Condition
from biojepa.eval.methods import get_method
from biojepa.models.method import FITTED_KEYS


def test_the_world_model_entry_reports_what_its_fit_chose(screen, priors, tiny_config):
    method = get_method("biojepa")
    assert method.fitted_values() == {}  # nothing fitted yet
    method.config = tiny_config()
    labels = screen.obs["perturbation"].astype(str).to_numpy()
    train = screen[np.isin(labels, ["control", "G0", "G1", "G2", "G4", "G5"])].copy()
    val = screen[labels == "G3"].copy()
    method.fit(train, val, priors)
    fitted = method.fitted_values()
    assert set(fitted) == set(FITTED_KEYS)
    assert fitted["retrieval_scale"] == method.model.module.effect.feature_scale.item()
    assert 0.0 <= fitted["latent_gate"] <= 1.0
    predicted = method.predict_deltas([Condition("G6", "ctx", "crispr_ko")], screen[labels == "control"])
    assert predicted.shape == (1, screen.n_vars) and np.isfinite(predicted).all()
