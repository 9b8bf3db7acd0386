import pytest
import torch

from biojepa.models.encoder import StateEncoder
from biojepa.models.teacher import EmaTeacher


def _encoder(seed: int) -> StateEncoder:
    torch.manual_seed(seed)
    return StateEncoder(12, latent_dim=6, hidden_dim=16, n_blocks=1, dropout=0.2)


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_teacher_starts_as_a_frozen_copy():
    student = _encoder(0)
    teacher = EmaTeacher(student)
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(p.requires_grad for p in student.parameters())
    for mine, theirs in zip(teacher.encoder.parameters(), student.parameters(), strict=True):
        assert torch.equal(mine, theirs) and mine.data_ptr() != theirs.data_ptr()
    # eval mode even when asked to train: no dropout noise in the targets
    teacher.train()
    assert not teacher.encoder.training
    x, mask, lib = torch.rand(5, 12), torch.ones(5, 12), torch.full((5,), 8.0)
    assert torch.equal(teacher(x, mask, lib), teacher(x, mask, lib))


def test_update_math_at_the_ends_and_in_between():
    student, other = _encoder(0), _encoder(1)
    teacher = EmaTeacher(other)
    before = _params(teacher)
    teacher.update(student, 1.0)  # momentum 1 keeps the teacher
    for old, new in zip(before, teacher.parameters(), strict=True):
        assert torch.equal(old, new)
    teacher.update(student, 0.75)
    for old, new, s in zip(before, teacher.parameters(), student.parameters(), strict=True):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * s.detach())
    teacher.update(student, 0.0)  # momentum 0 copies the student
    for new, s in zip(teacher.parameters(), student.parameters(), strict=True):
        assert torch.equal(new, s)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        teacher.update(student, 1.5)


def test_update_copies_buffers():
    student = _encoder(0)
    teacher = EmaTeacher(student)
    student.set_statistics(torch.rand(50, 12) * 3, torch.full((50,), 9.0))
    teacher.update(student, 0.99)
    assert torch.equal(teacher.encoder.gene_mean, student.gene_mean)
    assert torch.equal(teacher.encoder.library_stats, student.library_stats)


def test_teacher_gets_no_gradients():
    student = _encoder(0)
    teacher = EmaTeacher(student)
    x, mask, lib = torch.rand(8, 12), torch.ones(8, 12), torch.full((8,), 8.0)
    target = teacher(x, mask, lib)
    assert not target.requires_grad
    loss = (student(x, mask * (torch.rand(8, 12) > 0.3), lib) - target).square().mean()
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None for p in student.parameters())
