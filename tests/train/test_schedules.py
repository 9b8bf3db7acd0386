import itertools

import pytest
import torch

from biojepa.train.schedules import ema_momentum, set_lr, warmup_cosine


def test_warmup_then_cosine_to_floor():
    factors = [warmup_cosine(s, 100) for s in range(100)]
    assert factors[0] < factors[4] == 1.0
    assert all(a >= b for a, b in itertools.pairwise(factors[4:]))
    assert abs(warmup_cosine(100, 100) - 0.05) < 1e-9


def test_set_lr():
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    set_lr(opt, 0.2, 0.5)
    assert opt.param_groups[0]["lr"] == 0.1


def test_momentum_schedule_is_cosine_from_start_to_end():
    assert ema_momentum(0, 100, 0.996, 1.0) == pytest.approx(0.996)
    assert ema_momentum(50, 100, 0.996, 1.0) == pytest.approx(0.998)
    assert ema_momentum(100, 100, 0.996, 1.0) == pytest.approx(1.0)
    assert ema_momentum(250, 100, 0.996, 1.0) == pytest.approx(1.0)
    values = [ema_momentum(s, 100, 0.996, 1.0) for s in range(101)]
    assert all(a <= b for a, b in itertools.pairwise(values))
    assert [ema_momentum(s, 10, 0.99, 0.99) for s in range(11)] == pytest.approx([0.99] * 11)
