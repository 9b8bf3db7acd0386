import torch

from biojepa.models.predictor import AdaLNZeroBlock, Predictor


def test_identity_at_initialisation():
    torch.manual_seed(0)
    pred = Predictor(latent_dim=8, action_dim=6, hidden_dim=16, n_blocks=2).eval()
    z, a = torch.randn(4, 8), torch.randn(4, 6)
    assert torch.equal(pred(z, a), z)
    block = AdaLNZeroBlock(16, 6, dropout=0.0)
    h = torch.randn(4, 16)
    assert torch.equal(block(h, a), h)


def test_conditioning_is_per_action_after_training():
    torch.manual_seed(0)
    pred = Predictor(latent_dim=4, action_dim=2, hidden_dim=16, n_blocks=2, dropout=0.0)
    actions = torch.eye(2)
    targets = torch.tensor([[1.0, 0, 0, 0], [0, -1.0, 0, 0]])
    opt = torch.optim.Adam(pred.parameters(), lr=3e-2)
    z = torch.zeros(2, 4)
    for _ in range(120):
        loss = (pred(z, actions) - targets).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = pred(z, actions).detach()
    # two actions on the same state move it in different directions (not one shared added vector)
    assert torch.allclose(out, targets, atol=0.1)
