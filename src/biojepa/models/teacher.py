"""EMA teacher for stage-A pretraining: a stop-gradient, exponential-moving-average copy of the encoder.

The student (the trained :class:`~biojepa.models.encoder.StateEncoder`) embeds a masked view of each cell
and regresses the teacher's embedding of the full view (BYOL / V-JEPA style). After every optimiser step
the teacher moves towards the student: ``θ_teacher ← m·θ_teacher + (1 − m)·θ_student``. Buffers (the
encoder's standardisation statistics) are copied, not averaged. The teacher never receives gradients.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class EmaTeacher(nn.Module):
    """Exponential-moving-average copy of ``student``, frozen (``requires_grad_(False)``) and in eval mode."""

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(student)
        self.encoder.requires_grad_(False)
        self.encoder.eval()

    def train(self, mode: bool = True) -> EmaTeacher:
        """The teacher always stays in eval mode (no dropout), whatever ``mode`` says."""
        super().train(mode)
        self.encoder.eval()
        return self

    @torch.no_grad()
    def update(self, student: nn.Module, momentum: float) -> None:
        """``θ ← momentum·θ + (1 − momentum)·θ_student`` for parameters; buffers are copied from the student.

        ``momentum = 0`` copies the student, ``momentum = 1`` leaves the teacher unchanged.
        """
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"EMA momentum must lie in [0, 1], got {momentum}")
        for mine, theirs in zip(self.encoder.parameters(), student.parameters(), strict=True):
            mine.lerp_(theirs.detach(), 1.0 - momentum)
        for mine, theirs in zip(self.encoder.buffers(), student.buffers(), strict=True):
            mine.copy_(theirs)

    @torch.no_grad()
    def forward(self, *args: Tensor) -> Tensor:
        """Teacher embedding of the inputs (as the student's ``forward``), without gradients."""
        return self.encoder(*args)
