import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from biojepa.data.preprocess import prepare
from biojepa.errors import DataError
from biojepa.models.encoder import ProgramTokenEncoder, StateEncoder, build_encoder
from biojepa.models.world_model import WorldModel
from biojepa.sim import simulate
from biojepa.train.config import default_config


def test_shapes_and_statistics():
    enc = StateEncoder(n_genes=20, latent_dim=8, hidden_dim=32, n_blocks=1).eval()
    x = torch.rand(5, 20) * 3
    lib = torch.full((5,), 7.0)
    enc.set_statistics(x, lib)
    assert torch.allclose(enc.gene_mean, x.mean(0))
    assert enc(x, torch.ones(5, 20), lib).shape == (5, 8)


def test_masked_genes_are_ignored_not_read_as_zero():
    torch.manual_seed(0)
    enc = StateEncoder(n_genes=10, latent_dim=4, hidden_dim=16, n_blocks=1).eval()
    x = torch.rand(3, 10) + 1.0
    lib = torch.zeros(3)
    mask = torch.ones(3, 10)
    mask[:, 0] = 0
    changed = x.clone()
    changed[:, 0] = 100.0
    # a masked gene's value has no influence ...
    assert torch.allclose(enc(x, mask, lib), enc(changed, mask, lib))
    # ... and "not measured" differs from "measured as zero"
    zeroed = x.clone()
    zeroed[:, 0] = 0.0
    assert not torch.allclose(enc(zeroed, torch.ones(3, 10), lib), enc(x, mask, lib))


def test_library_size_is_an_input():
    torch.manual_seed(0)
    enc = StateEncoder(n_genes=6, latent_dim=4, hidden_dim=8, n_blocks=1).eval()
    x, mask = torch.rand(2, 6), torch.ones(2, 6)
    assert not torch.allclose(enc(x, mask, torch.zeros(2)), enc(x, mask, torch.full((2,), 3.0)))


def _programmed_cells(n_cells: int = 400, n_programs: int = 4, genes_per: int = 10) -> torch.Tensor:
    """Cells whose genes come in ``n_programs`` co-varying blocks (genes interleaved across blocks)."""
    g = torch.Generator().manual_seed(0)
    factors = torch.randn(n_cells, n_programs, generator=g)
    block = torch.arange(n_programs * genes_per) % n_programs
    return 2.0 + factors[:, block] + 0.2 * torch.randn(n_cells, len(block), generator=g)


def _program_encoder(n_genes: int = 40, n_programs: int = 4) -> ProgramTokenEncoder:
    torch.manual_seed(0)
    return ProgramTokenEncoder(n_genes, latent_dim=8, d_model=16, n_layers=2, n_programs=n_programs).eval()


def test_program_encoder_shape_and_programs_from_co_varying_genes():
    x = _programmed_cells()
    enc = _program_encoder()
    enc.set_statistics(x, torch.full((len(x),), 8.0))
    assert torch.allclose(enc.gene_mean, x.mean(0))
    assert enc(x[:5], torch.ones(5, 40), torch.full((5,), 8.0)).shape == (5, 8)
    assert enc(x[:0], torch.ones(0, 40), torch.zeros(0)).shape == (0, 8)
    # k-means groups exactly the genes that share a factor
    block = torch.arange(40) % 4
    for p in range(4):
        assert len(set(block[enc.program == p].tolist())) == 1
    assert sorted(torch.bincount(enc.program).tolist()) == [10, 10, 10, 10]


def test_program_encoder_ignores_masked_gene_values():
    x = _programmed_cells()
    enc = _program_encoder()
    lib = torch.full((len(x),), 8.0)
    enc.set_statistics(x, lib)
    g = torch.Generator().manual_seed(1)
    mask = (torch.rand(x.shape, generator=g) > 0.4).float()
    fake = torch.where(mask > 0, x, torch.randn(x.shape, generator=g) * 1e3)
    assert torch.allclose(enc(x, mask, lib), enc(fake, mask, lib), atol=1e-5)
    # "not measured" differs from "measured at the mean"
    at_mean = torch.where(mask > 0, x, enc.gene_mean)
    assert not torch.allclose(enc(at_mean, torch.ones_like(mask), lib), enc(x, mask, lib), atol=1e-4)


def test_an_unmeasured_program_is_masked_out_not_fed_as_a_token():
    x = _programmed_cells(n_cells=20)
    enc = _program_encoder()
    lib = torch.full((20,), 8.0)
    enc.set_statistics(x, lib)
    silent = int(enc.program[0])
    mask = torch.ones_like(x)
    mask[:10, enc.program == silent] = 0  # cells 0-9 measure none of this program's genes
    before = enc(x, mask, lib)
    with torch.no_grad():  # whatever the program's own token would be ...
        enc.program_embedding[silent] += 5 * torch.randn(enc.program_embedding.shape[1])
        enc.token_weight[silent] += 5 * torch.randn(enc.token_weight.shape[1:])
    fake = x.clone()
    fake[:, enc.program == silent] = 1e3  # ... and whatever its genes hold
    after = enc(fake, mask, lib)[:10]
    assert torch.allclose(before[:10], enc(x, mask, lib)[:10], atol=1e-5)
    assert torch.allclose(before[:10], after, atol=1e-5)
    # cells that measure the program do read its token
    assert not torch.allclose(before[10:], enc(x, mask, lib)[10:], atol=1e-3)


def test_program_assignment_survives_a_state_dict_round_trip(tmp_path):
    x = _programmed_cells()
    lib = torch.full((len(x),), 8.0)
    enc = _program_encoder()
    enc.set_statistics(x, lib)
    save_file(enc.state_dict(), tmp_path / "enc.safetensors")
    fresh = _program_encoder()
    assert not torch.equal(fresh.program, enc.program)
    fresh.load_state_dict(load_file(tmp_path / "enc.safetensors"))
    assert torch.equal(fresh.program, enc.program) and fresh.program.dtype == torch.long
    mask = torch.ones_like(x)
    assert torch.allclose(fresh(x, mask, lib), enc(x, mask, lib))


def test_encoder_choice_is_validated():
    assert isinstance(build_encoder("mlp", 10, 4, 8, 1, 0.0, 64), StateEncoder)
    assert isinstance(build_encoder("program_tokens", 10, 4, 8, 1, 0.0, 3), ProgramTokenEncoder)
    with pytest.raises(
        DataError, match=r"encoder = 'cnn' is not supported; use one of \['mlp', 'program_tokens'\]"
    ):
        build_encoder("cnn", 10, 4, 8, 1, 0.0, 64)
    with pytest.raises(DataError, match="n_programs = 0 must be a positive integer"):
        build_encoder("program_tokens", 10, 4, 8, 1, 0.0, 0)
    with pytest.raises(DataError, match="multiple of the 4 attention heads"):
        build_encoder("program_tokens", 10, 4, 10, 1, 0.0, 3)


def test_world_model_with_program_tokens_fits_a_simulated_screen(tmp_path):
    adata = prepare(simulate("tiny", 0))
    config = default_config("program_tokens")
    config.prior_kinds = []
    config.model.update(latent_dim=16, n_programs=16, encoder_hidden=32, action_dim=16)
    config.model.update(predictor_hidden=32, decoder_hidden=32)
    config.pretrain.epochs, config.pretrain.batch_size, config.pretrain.lr = 2, 128, 3e-3
    config.decoder.epochs, config.dynamics.epochs, config.dynamics.steps_per_epoch = 1, 1, 4
    model = WorldModel(config).fit(adata, out=tmp_path)
    pretrain = [h for h in model.history if h["stage"] == "pretrain"]
    assert [h["stage"] for h in model.history] == ["pretrain"] * 2 + ["decoder", "dynamics"]
    assert all(np.isfinite(h["loss"]) for h in pretrain)
    assert pretrain[-1]["effective_rank"] > 4  # of 16 latent dimensions: no collapse
    encoder = model.module.encoder
    assert isinstance(encoder, ProgramTokenEncoder) and len(torch.unique(encoder.program)) == 16
    loaded = WorldModel.load(tmp_path)
    assert torch.equal(loaded.module.encoder.program, encoder.program)
    np.testing.assert_allclose(loaded.embed(adata[:20]), model.embed(adata[:20]), rtol=1e-5, atol=1e-6)
