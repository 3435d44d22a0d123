"""RNN-T loss: exact against a brute-force sum over all alignments, gradients included."""

from __future__ import annotations

import itertools

import pytest
import torch

from onsei.losses.transducer import transducer_loss


def brute_force_nll(logits: torch.Tensor, targets: list[int], blank: int = 0) -> torch.Tensor:
    """-log of the sum over every alignment: T blanks and U labels in order, blank last."""
    log_probs = logits.log_softmax(-1)  # (T, U+1, V)
    frames, labels = log_probs.shape[0], len(targets)
    paths = []
    for label_steps in itertools.combinations(range(frames + labels - 1), labels):
        t = u = 0
        score = log_probs.new_zeros(())
        for step in range(frames + labels - 1):
            if step in label_steps:
                score = score + log_probs[t, u, targets[u]]
                u += 1
            else:
                score = score + log_probs[t, u, blank]
                t += 1
        paths.append(score + log_probs[frames - 1, labels, blank])
    return -torch.logsumexp(torch.stack(paths), 0)


@pytest.mark.parametrize(
    ("frames", "labels", "vocab"), [(1, 0, 3), (1, 2, 3), (3, 2, 4), (4, 3, 5), (5, 1, 2)]
)
def test_equals_brute_force_value_and_gradient(frames: int, labels: int, vocab: int):
    torch.manual_seed(frames * 10 + labels)
    logits = torch.randn(1, frames, labels + 1, vocab, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(1, vocab, (1, max(labels, 1)))[:, :labels]
    ours = transducer_loss(logits, targets, torch.tensor([frames]), torch.tensor([labels]))
    expected = brute_force_nll(logits[0], targets[0].tolist())
    assert abs(ours.item() - expected.item()) < 1e-6
    (grad_ours,) = torch.autograd.grad(ours, logits)
    (grad_expected,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(grad_ours, grad_expected, atol=1e-9, rtol=1e-7)


def test_padded_batch_equals_each_utterance_alone():
    torch.manual_seed(0)
    shapes = [(6, 3), (4, 1), (5, 0), (2, 3)]
    max_t, max_u = 6, 3
    logits = torch.randn(len(shapes), max_t, max_u + 1, 5, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(1, 5, (len(shapes), max_u))
    lengths = torch.tensor([t for t, _ in shapes])
    target_lengths = torch.tensor([u for _, u in shapes])
    batch_losses = transducer_loss(logits, targets, lengths, target_lengths, reduction="none")
    (batch_grad,) = torch.autograd.grad(batch_losses.sum(), logits)
    for i, (t, u) in enumerate(shapes):
        alone = logits[i : i + 1, :t, : u + 1].detach().requires_grad_()
        expected = brute_force_nll(alone[0], targets[i, :u].tolist())
        assert abs(batch_losses[i].item() - expected.item()) < 1e-6
        (grad,) = torch.autograd.grad(expected, alone)
        torch.testing.assert_close(batch_grad[i, :t, : u + 1], grad[0])
        assert torch.all(batch_grad[i, t:] == 0) and torch.all(batch_grad[i, :, u + 1 :] == 0)


def test_gradcheck_float64():
    torch.manual_seed(3)
    logits = torch.randn(2, 4, 3, 4, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([[1, 3], [2, 0]])
    lengths, target_lengths = torch.tensor([4, 3]), torch.tensor([2, 1])
    assert torch.autograd.gradcheck(
        lambda x: transducer_loss(x, targets, lengths, target_lengths, reduction="sum"), (logits,)
    )


def test_reductions_and_other_blank():
    torch.manual_seed(4)
    logits = torch.randn(2, 3, 3, 4)
    targets = torch.tensor([[0, 1], [2, 1]])
    args = (logits, targets, torch.tensor([3, 3]), torch.tensor([2, 2]))
    none = transducer_loss(*args, blank=3, reduction="none")
    assert none.shape == (2,) and torch.all(none > 0)
    assert torch.isclose(transducer_loss(*args, blank=3, reduction="sum"), none.sum())
    assert torch.isclose(transducer_loss(*args, blank=3), none.mean())
    with pytest.raises(ValueError):
        transducer_loss(*args, reduction="max")
