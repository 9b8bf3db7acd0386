"""Learning-rate schedules (pure functions of the step, so a resumed run continues the same curve)."""

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
