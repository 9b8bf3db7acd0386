import itertools

import torch

from biojepa.train.schedules import set_lr, warmup_cosine


def test_warmup_then_cosine_to_floor():
    factors = [warmup_cosine(s, 100) for s in range(100)]
    assert factors[0] < factors[4] == 1.0
    assert all(a >= b for a, b in itertools.pairwise(factors[4:]))
    assert abs(warmup_cosine(100, 100) - 0.05) < 1e-9


def test_set_lr():
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    set_lr(opt, 0.2, 0.5)
    assert opt.param_groups[0]["lr"] == 0.1
