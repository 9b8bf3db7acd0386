"""Learning-rate and EMA-momentum schedules: pure functions of the step, so resuming continues the curve."""

from __future__ import annotations

import math

import torch


def warmup_cosine(step: int, total_steps: int, warmup_fraction: float = 0.05) -> float:
    """Factor on the base rate: linear warm-up, then cosine decay to 5 % of the base rate."""
    warmup = max(1, int(total_steps * warmup_fraction))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> None:
    """Set each parameter group's learning rate to ``base_lr * factor`` (times the group's ``lr_scale``)."""
    for group in optimizer.param_groups:
        group["lr"] = base_lr * factor * group.get("lr_scale", 1.0)


def ema_momentum(step: int, total_steps: int, start: float, end: float) -> float:
    """EMA-teacher momentum, BYOL cosine schedule: ``start`` at step 0 rising to ``end`` at ``total_steps``.

    With ``start == end`` the momentum is constant.
    """
    progress = min(1.0, step / max(1, total_steps))
    return end - (end - start) * 0.5 * (1 + math.cos(math.pi * progress))
