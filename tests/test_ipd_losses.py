"""The IPD-FER losses against values computed by hand on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from facefactors.ipd.config import LossConfig
from facefactors.ipd.losses import (
    classifier_losses,
    confusion_loss,
    cosine_loss,
    cross_entropy,
    discriminator_losses,
    generator_losses,
    identity_loss,
    recon_loss,
)
from ipd_helpers import one_thread  # noqa: F401 - autouse fixture


def test_cross_entropy_by_hand() -> None:
    # softmax([0, ln 3]) = [1/4, 3/4]
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])
    assert cross_entropy(logits[:1], torch.tensor([1])).item() == pytest.approx(math.log(4 / 3))
    assert cross_entropy(logits[:1], torch.tensor([0])).item() == pytest.approx(math.log(4))
    mean = cross_entropy(logits, torch.tensor([1, 0])).item()
    assert mean == pytest.approx((math.log(4 / 3) + math.log(2)) / 2)
    # Only valid samples count; a batch with none gives 0.
    valid = torch.tensor([False, True])
    assert cross_entropy(logits, torch.tensor([5, 0]), valid).item() == pytest.approx(math.log(2))
    assert cross_entropy(logits, torch.tensor([5, 5]), valid & False).item() == 0.0


def test_recon_neutral_term_only_for_neutral_samples() -> None:
    x = torch.zeros(2, 3, 4, 4)
    x_ipe = torch.stack([torch.full((3, 4, 4), 0.5), torch.full((3, 4, 4), 0.25)])
    x_ip = torch.ones(2, 3, 4, 4, requires_grad=True)
    neutral = torch.tensor([True, False])
    # per sample: |x_ipe - x| = [0.5, 0.25]; neutral term = [1, 0]; batch mean = 0.875
    loss = recon_loss(x_ipe, x_ip, x, neutral)
    assert loss.item() == pytest.approx(0.875)
    assert recon_loss(x_ipe, x_ip, x, torch.tensor([False, False])).item() == pytest.approx(0.375)
    loss.backward()
    assert x_ip.grad[1].abs().sum() == 0  # the non-neutral sample's x̂_{i-p} is not pulled to x
    assert x_ip.grad[0].abs().sum() > 0


def test_identity_loss_is_mean_l1_per_dimension() -> None:
    n_x = torch.tensor([[0.0, 0.0]])
    n_ipe = torch.tensor([[1.0, -1.0]])
    n_ip = torch.tensor([[2.0, 0.0]])
    assert identity_loss(n_ipe, n_ip, n_x).item() == pytest.approx(1.0 + 1.0)
    assert identity_loss(n_x, n_x, n_x).item() == 0.0


def test_cosine_loss_zero_for_orthogonal_and_absolute_value() -> None:
    assert cosine_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]])).item() == 0.0
    f_id = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    f_exp = torch.tensor([[-2.0, -2.0], [1.0, 1.0]])
    # |cos| = [1, 1/sqrt(2)]: anti-parallel counts as fully correlated
    assert cosine_loss(f_id, f_exp).item() == pytest.approx((1 + 1 / math.sqrt(2)) / 2)


def test_confusion_loss_minimal_at_uniform() -> None:
    uniform = torch.zeros(3, 5, requires_grad=True)
    loss = confusion_loss(uniform)
    assert loss.item() == pytest.approx(math.log(5))
    loss.backward()
    assert uniform.grad.abs().max() < 1e-7  # a stationary point
    # softmax([0, ln 2]) = [1/3, 2/3]: -(ln 1/3 + ln 2/3) / 2
    skewed = torch.tensor([[0.0, math.log(2.0)]])
    assert confusion_loss(skewed).item() == pytest.approx((math.log(3) + math.log(1.5)) / 2)
    for _ in range(5):
        assert confusion_loss(torch.randn(4, 5)).item() > math.log(5)


def test_classifier_losses_sum_and_switches() -> None:
    cfg = LossConfig()
    exp_logits = torch.zeros(2, 3)
    pose_logits = torch.zeros(2, 5)
    f = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    g = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([0, 3])  # 3 = extra neutral (K = 3): left out of L_exp
    total, logs = classifier_losses(exp_logits, y, cfg, pose_logits, torch.tensor([0, 4]), f, g)
    assert logs["loss/c/exp"].item() == pytest.approx(math.log(3))
    assert logs["loss/c/pose"].item() == pytest.approx(math.log(5))
    assert logs["loss/c/cos"].item() == pytest.approx(0.5)
    assert total.item() == pytest.approx(math.log(3) + math.log(5) + 0.5 * 0.5)
    assert logs["loss/c/total"].item() == pytest.approx(total.item())
    # An unknown pose bin (-1) is left out of L_pose.
    _, logs = classifier_losses(exp_logits, y, cfg, pose_logits, torch.tensor([-1, 4]), f, g)
    assert logs["loss/c/pose"].item() == pytest.approx(math.log(5))
    off = LossConfig(use_cos=False)
    total, logs = classifier_losses(exp_logits, y, off, pose_logits, torch.tensor([0, 4]), f, g)
    assert "loss/c/cos" not in logs and total.item() == pytest.approx(math.log(15))


def test_discriminator_loss() -> None:
    logits = torch.tensor([[0.0, math.log(3.0)]])
    total, logs = discriminator_losses(logits, torch.tensor([1]))
    assert total.item() == pytest.approx(math.log(4 / 3)) == logs["loss/d/rexp"].item()


def _gen_inputs() -> dict:
    x = torch.zeros(2, 3, 4, 4)
    return {
        "x": x,
        "y": torch.tensor([0, 2]),  # sample 0 is neutral (c = 0)
        "neutral": 0,
        "x_ip": torch.ones(2, 3, 4, 4),
        "x_ipe": torch.full((2, 3, 4, 4), 0.5),
        "n_x": torch.zeros(2, 2),
        "n_ip": torch.tensor([[2.0, 0.0], [2.0, 0.0]]),
        "n_ipe": torch.tensor([[1.0, -1.0], [1.0, -1.0]]),
        "d_ip": torch.zeros(2, 7),
        "d_ipe": torch.zeros(2, 7),
        "conf_logits": torch.zeros(2, 5),
    }


def test_generator_losses_weighted_sum() -> None:
    cfg = LossConfig()  # λ = (0.001, 0.001, 1, 10), β2 = 1
    total, logs = generator_losses(cfg=cfg, **_gen_inputs())
    recon = (0.5 + 0.5 + 1.0) / 2  # both full terms 0.5, the neutral term 1 for sample 0 only
    assert logs["loss/g/recon"].item() == pytest.approx(recon)
    assert logs["loss/g/id"].item() == pytest.approx(2.0)
    assert logs["loss/g/fneu"].item() == pytest.approx(math.log(7))
    assert logs["loss/g/fexp"].item() == pytest.approx(math.log(7))
    assert logs["loss/g/conf"].item() == pytest.approx(math.log(5))
    expected = 0.001 * math.log(7) * 2 + 1.0 * 2.0 + 10 * recon + math.log(5)
    assert total.item() == pytest.approx(expected)


def test_generator_loss_fneu_targets_neutral() -> None:
    inputs = _gen_inputs()
    inputs["d_ip"] = torch.tensor([[10.0, 0, 0, 0, 0, 0, 0]] * 2)  # D is sure x̂_{i-p} is neutral
    _, logs = generator_losses(cfg=LossConfig(), **inputs)
    assert logs["loss/g/fneu"].item() < 1e-3


@pytest.mark.parametrize(
    ("switch", "key"),
    [("use_id", "loss/g/id"), ("use_conf", "loss/g/conf"), ("use_discriminator", "loss/g/fneu")],
)
def test_generator_switches_remove_terms(switch: str, key: str) -> None:
    full, _ = generator_losses(cfg=LossConfig(), **_gen_inputs())
    total, logs = generator_losses(cfg=LossConfig(**{switch: False}), **_gen_inputs())
    assert key not in logs
    assert total.item() < full.item()
    _, logs = generator_losses(cfg=LossConfig(lambda_id=0.0), **_gen_inputs())
    assert "loss/g/id" not in logs
