"""The losses of IPD-FER, one pure function per equation of the paper (§3).

Notation: x the real image, y its expression label, y_p its pose bin, c the
neutral label, x̂_{i-p} = G_dec(f_id + f_pose) and x̂_{i-p-e} = G_dec(f_id +
f_pose + f_exp). Expectations E_x are batch means. Norms are normalised per
element: ‖·‖₁ is the *mean* absolute difference over pixels (L_recon) or over
feature dimensions (L_id), so the paper's weights λ3 = 1 and λ4 = 10 balance
terms of similar scale whatever the image size or embedding width.

A label of -1 (unknown) leaves a sample out of the terms that need its label.
Every function computes in float32 (inputs may come from bf16 autocast). The
three ``*_losses`` functions assemble the per-phase objectives of Algorithm 1
and return ``(total, logs)`` where ``logs`` maps hierarchical names such as
``loss/g/recon`` to detached scalars.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facefactors.ipd.config import LossConfig

Logs = dict[str, torch.Tensor]


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None):
    """L = −E_x Σ_k 1[y = k] log softmax(logits)_k   (Eqs. 5, 6, 8, 9, 10).

    Args:
        logits: (B, K).
        target: (B,) class indices.
        valid: optional (B,) bool mask; the mean runs over valid samples only, and
            a batch with none gives 0 (with a graph, so backward still works).
    """
    logp = F.log_softmax(logits.float(), dim=1)
    if valid is None:
        return F.nll_loss(logp, target)
    safe = torch.where(valid, target, torch.zeros_like(target))
    nll = -logp.gather(1, safe[:, None])[:, 0] * valid
    return nll.sum() / valid.sum().clamp(min=1)


def recon_loss(
    x_ipe: torch.Tensor,
    x_ip: torch.Tensor,
    x: torch.Tensor,
    is_neutral: torch.Tensor,
    x_neutral: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_recon = E_x ‖x̂_{i-p-e} − x‖₁ + E_x 1[y = c] ‖x̂_{i-p} − x‖₁   (Eq. 1).

    The neutral term counts only for neutral samples but is averaged over the
    whole batch, as the expectation with an indicator is. Given ``x_neutral`` (the
    ``loss.true_neutral`` diagnostic, outside the paper), the neutral term becomes
    E_x ‖x̂_{i-p} − x_n‖₁ over every sample, x_n the true neutral face (zero
    expression; the synthetic neutral class keeps a slight one).

    Args:
        x_ipe, x_ip, x: (B, 3, H, W) images in [-1, 1].
        is_neutral: (B,) bool, y == c.
        x_neutral: (B, 3, H, W) true neutral faces, or None.
    """
    x = x.float()
    full = (x_ipe.float() - x).abs().flatten(1).mean(1)  # (B,)
    if x_neutral is not None:
        neutral = (x_ip.float() - x_neutral.float()).abs().flatten(1).mean(1)
    else:
        neutral = (x_ip.float() - x).abs().flatten(1).mean(1) * is_neutral.float()
    return (full + neutral).mean()


def identity_loss(n_ipe: torch.Tensor, n_ip: torch.Tensor, n_x: torch.Tensor) -> torch.Tensor:
    """L_id = E_x ‖N(x̂_{i-p-e}) − N(x)‖₁ + E_x ‖N(x̂_{i-p}) − N(x)‖₁   (Eq. 2).

    Args:
        n_ipe, n_ip, n_x: (B, D) identity embeddings of the two fakes and the real image.
    """
    n_x = n_x.float()
    return ((n_ipe.float() - n_x).abs().mean(1) + (n_ip.float() - n_x).abs().mean(1)).mean()


def cosine_loss(f_id: torch.Tensor, f_exp: torch.Tensor) -> torch.Tensor:
    """L_cos = E_x |f_id · f_exp| / (‖f_id‖₂ ‖f_exp‖₂)   (Eq. 3).

    Args:
        f_id, f_exp: (B, D).
    """
    return F.cosine_similarity(f_id.float(), f_exp.float(), dim=1, eps=1e-8).abs().mean()


def confusion_loss(pose_logits_of_exp: torch.Tensor) -> torch.Tensor:
    """L_confusion = −E_x Σ_k (1/K_P) log softmax(C_p(E_exp(x)))_k   (Eq. 4).

    The cross-entropy against the uniform distribution: its minimum, log K_P, is
    reached exactly when C_p predicts uniform probabilities from f_exp.

    Args:
        pose_logits_of_exp: (B, K_P) = C_p(f_exp).
    """
    return -F.log_softmax(pose_logits_of_exp.float(), dim=1).mean()


def classifier_losses(
    exp_logits: torch.Tensor,
    y: torch.Tensor,
    cfg: LossConfig,
    pose_logits: torch.Tensor | None = None,
    y_pose: torch.Tensor | None = None,
    f_id: torch.Tensor | None = None,
    f_exp: torch.Tensor | None = None,
) -> tuple[torch.Tensor, Logs]:
    """Phase 1 objective: L_c + β1 L_cos with L_c = L_exp + L_pose   (Eq. 7).

    Labels y ≥ K (the extra neutral of a class set without neutral) are left out
    of L_exp: C_exp has no output for them. Pose bins of -1 (unknown) are left
    out of L_pose.

    Args:
        exp_logits: (B, K) = C_exp(f_exp).
        y: (B,) expression labels.
        cfg: weights and switches.
        pose_logits: (B, K_P) = C_p(f_pose), None without E_pose.
        y_pose: (B,) pose bins.
        f_id, f_exp: (B, D), for L_cos (skipped if f_id is None or L_cos is off).
    """
    k = exp_logits.shape[1]
    l_exp = cross_entropy(exp_logits, y, valid=(y >= 0) & (y < k))
    logs: Logs = {"loss/c/exp": l_exp}
    total = l_exp
    if pose_logits is not None:
        l_pose = cross_entropy(pose_logits, y_pose, valid=y_pose >= 0)  # -1: unknown pose
        logs["loss/c/pose"] = l_pose
        total = total + l_pose
    if f_id is not None and cfg.active("cos"):
        l_cos = cosine_loss(f_id, f_exp)
        logs["loss/c/cos"] = l_cos
        total = total + cfg.beta_cos * l_cos
    logs["loss/c/total"] = total
    return total, _detached(logs)


def discriminator_losses(real_logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Logs]:
    """Phase 2 objective: L_rexp = CE(D(x), y)   (Eq. 8).

    Args:
        real_logits: (B, K or K+1) = D(x).
        y: (B,) expression labels (the extra neutral is D's last output).
    """
    l_rexp = cross_entropy(real_logits, y, valid=y >= 0)
    return l_rexp, _detached({"loss/d/rexp": l_rexp, "loss/d/total": l_rexp})


def generator_losses(
    x: torch.Tensor,
    y: torch.Tensor,
    neutral: int,
    cfg: LossConfig,
    x_ip: torch.Tensor,
    x_ipe: torch.Tensor,
    n_x: torch.Tensor | None = None,
    n_ip: torch.Tensor | None = None,
    n_ipe: torch.Tensor | None = None,
    d_ip: torch.Tensor | None = None,
    d_ipe: torch.Tensor | None = None,
    conf_logits: torch.Tensor | None = None,
    x_neutral: torch.Tensor | None = None,
) -> tuple[torch.Tensor, Logs]:
    """Phase 3 objective: L'_G + β2 L_conf with
    L'_G = λ1 L_fneu + λ2 L_fexp + λ3 L_id + λ4 L_recon   (Eq. 11).

    L_fneu = CE(D(x̂_{i-p}), c) (Eq. 9) and L_fexp = CE(D(x̂_{i-p-e}), y) (Eq. 10).
    A term whose inputs are None, or whose switch is off, is left out.

    Args:
        x: (B, 3, H, W) real images; y: (B,) labels; neutral: c.
        cfg: weights and switches.
        x_ip, x_ipe: (B, 3, H, W) fakes.
        n_x, n_ip, n_ipe: (B, D) N(x), N(x̂_{i-p}), N(x̂_{i-p-e}).
        d_ip, d_ipe: D's logits for the two fakes.
        conf_logits: (B, K_P) = C_p(f_exp) with C_p fixed.
        x_neutral: true neutral faces for L_recon's neutral term (``cfg.true_neutral``).
    """
    logs: Logs = {}
    total = x_ipe.new_zeros((), dtype=torch.float32)
    if cfg.active("fneu") and d_ip is not None:
        logs["loss/g/fneu"] = cross_entropy(d_ip, torch.full_like(y, neutral))
        total = total + cfg.lambda_fneu * logs["loss/g/fneu"]
    if cfg.active("fexp") and d_ipe is not None:
        logs["loss/g/fexp"] = cross_entropy(d_ipe, y, valid=y >= 0)
        total = total + cfg.lambda_fexp * logs["loss/g/fexp"]
    if cfg.active("id") and n_x is not None:
        logs["loss/g/id"] = identity_loss(n_ipe, n_ip, n_x)
        total = total + cfg.lambda_id * logs["loss/g/id"]
    if cfg.active("recon"):
        if cfg.true_neutral and x_neutral is None:
            raise ValueError("loss.true_neutral is on but the batch carries no true neutral faces")
        x_n = x_neutral if cfg.true_neutral else None
        logs["loss/g/recon"] = recon_loss(x_ipe, x_ip, x, y == neutral, x_n)
        total = total + cfg.lambda_recon * logs["loss/g/recon"]
    if cfg.active("conf") and conf_logits is not None:
        logs["loss/g/conf"] = confusion_loss(conf_logits)
        total = total + cfg.beta_conf * logs["loss/g/conf"]
    logs["loss/g/total"] = total
    return total, _detached(logs)


def _detached(logs: Logs) -> Logs:
    return {k: v.detach() for k, v in logs.items()}
