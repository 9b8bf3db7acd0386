import torch

from biojepa.models.inverse import InverseDynamics


def test_inverse_head_learns_which_action_moved_the_state():
    torch.manual_seed(0)
    head = InverseDynamics(latent_dim=4, action_dim=3, n_actions=3, hidden_dim=16)
    z_pre = torch.randn(90, 4)
    labels = torch.arange(3).repeat(30)
    z_post = z_pre + torch.eye(3, 4)[labels] * 2.0
    opt = torch.optim.Adam(head.parameters(), lr=3e-2)
    for _ in range(40):
        logits, embedding = head(z_pre, z_post)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    logits, embedding = head(z_pre, z_post)
    assert embedding.shape == (90, 3)
    assert (logits.argmax(1) == labels).float().mean() > 0.95
