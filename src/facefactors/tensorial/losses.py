"""The losses of the tensorial model, one pure function per equation (§3.6).

Norms are normalised per element: ‖·‖² is the *mean* squared difference over
a sample's entries (pixels × channels, coefficients, coordinates) and ‖·‖₁ the
mean absolute one, averaged over the batch, so weights mean the same at any
image size. Masked terms average over the mask's weight instead of the pixel
count. Every function computes in float32 (inputs may come from autocast).

:func:`generator_losses` and :func:`discriminator_losses` assemble the two
BEGAN phases and return ``(total, logs)``; ``logs`` maps hierarchical names
(``loss/g/recon``, ``loss/d/real``, ``began/k``, ...) to detached scalars.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from facefactors.tensorial.batch import Batch
from facefactors.tensorial.config import TensorialLossConfig
from facefactors.tensorial.model import TensorialOutput, Z0Output

Logs = dict[str, torch.Tensor]


def _sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared difference: (B, ...) × 2 → (B,)."""
    return (a.float() - b.float()).pow(2).flatten(1).mean(1)


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample mean absolute difference: (B, ...) × 2 → (B,)."""
    return (a.float() - b.float()).abs().flatten(1).mean(1)


def _masked_mean(err: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Σ w·e / Σ w over all entries; ``weight`` broadcasts over ``err``'s channels."""
    w = weight.float().expand_as(err)
    return (w * err).sum() / w.sum().clamp(min=1e-6)


def recon_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """E_recon = ‖x − x̂‖²₂   (Eq. 8).

    Args:
        x, x_hat: (B, 3, S, S) in [-1, 1].
    """
    return _sq(x_hat, x).mean()


def began_energy(x: torch.Tensor, d_x: torch.Tensor) -> torch.Tensor:
    """L(v) = ‖v − D(v)‖₁, the BEGAN autoencoder energy (L_real for x, L_fake for x̂).

    Args:
        x: (B, 3, S, S) images fed to D; d_x: (B, 3, S, S) = D(x).
    """
    return _l1(d_x, x).mean()


def adversarial_loss(x_hat: torch.Tensor, d_x_hat: torch.Tensor) -> torch.Tensor:
    """E_adv = ‖x̂ − D(x̂)‖₁, minimised by the generator   (§3.6, BEGAN)."""
    return began_energy(x_hat, d_x_hat)


def discriminator_objective(l_real: torch.Tensor, l_fake: torch.Tensor, k: float) -> torch.Tensor:
    """D minimises ‖x − D(x)‖₁ − k_t ‖x̂ − D(x̂)‖₁   (§3.6, BEGAN)."""
    return l_real - k * l_fake


def began_update(k: float, l_real: float, l_fake: float, gamma: float, lambda_k: float) -> float:
    """k_{t+1} = clip(k_t + λ_k (γ L_real − L_fake), 0, 1)   (BEGAN's proportional control)."""
    return min(max(k + lambda_k * (gamma * l_real - l_fake), 0.0), 1.0)


def began_convergence(l_real: float, l_fake: float, gamma: float) -> float:
    """M_global = L_real + |γ L_real − L_fake|, BEGAN's convergence measure."""
    return l_real + abs(gamma * l_real - l_fake)


def verification_loss(v_x: torch.Tensor, v_x_hat: torch.Tensor) -> torch.Tensor:
    """E_veri = 1 − cos(V(x), V(x̂))   (§3.6).

    Args:
        v_x, v_x_hat: (B, D) embeddings of the real and reconstructed faces.
    """
    return (1.0 - F.cosine_similarity(v_x.float(), v_x_hat.float(), dim=1, eps=1e-8)).mean()


def pose_loss(z_p: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """E_p = ‖z_p − x̂_p‖²₂   (Eq. 9).

    Args:
        z_p: (B, 9) pose code, or (B, 3, 3) (the code or its projection R).
        rotation: (B, 3, 3) pseudo ground-truth rotation x̂_p (row-major flattened).
    """
    return _sq(z_p.reshape(-1, 9), rotation.reshape(-1, 9)).mean()


def coefficient_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """E_exp = ‖fc(z_exp) − x̂_exp‖²₂ (Eq. 10) and E_id = ‖fc(z_id) − x̂_id‖²₂ (Eq. 11).

    Args:
        pred: (B, K) fc head output; target: (B, K) pseudo ground-truth coefficients.
    """
    return _sq(pred, target).mean()


def normal_loss(
    normals: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """NFE's normal constraint: ‖N − N̂‖² against the fitted normals, over the face mask.

    Masked because off-face normals are undefined (the synthetic faces store
    0 there, which NFE's parameterisation cannot produce).

    Args:
        normals: (B, 3, S, S) predicted; target: (B, 3, S, S); mask: (B, 1, S, S) or None.
    """
    err = (normals.float() - target.float()).pow(2)
    return err.mean() if mask is None else _masked_mean(err, mask)


def unit_length_loss(normals: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """NFE's unit-length constraint: ‖ ‖N‖² − 1 ‖² per pixel (over the face mask).

    Args:
        normals: (B, 3, S, S); mask: (B, 1, S, S) or None.
    """
    err = (normals.float().pow(2).sum(1, keepdim=True) - 1.0).pow(2)
    return err.mean() if mask is None else _masked_mean(err, mask)


def smoothness_loss(maps: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """NFE's smoothness: mean squared difference between 4-neighbours.

    With a mask, a neighbour pair counts with the product of its two mask
    values, so differences across the face boundary are not penalised.

    Args:
        maps: (B, C, S, S); mask: (B, 1, S, S) or None.
    """
    return _neighbour_loss(maps, mask, lambda d: d.pow(2))


def albedo_tv_loss(albedo: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """NFE's albedo constraint: total variation (mean |difference| of 4-neighbours), masked.

    Args:
        albedo: (B, 3, S, S); mask: (B, 1, S, S) or None.
    """
    return _neighbour_loss(albedo, mask, torch.abs)


def _neighbour_loss(maps, mask, penalty) -> torch.Tensor:
    m = maps.float()
    dx, dy = m[..., :, 1:] - m[..., :, :-1], m[..., 1:, :] - m[..., :-1, :]
    if mask is None:
        return 0.5 * (penalty(dx).mean() + penalty(dy).mean())
    w = mask.float()
    wx, wy = w[..., :, 1:] * w[..., :, :-1], w[..., 1:, :] * w[..., :-1, :]
    return 0.5 * (_masked_mean(penalty(dx), wx) + _masked_mean(penalty(dy), wy))


def light_loss(z_l: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """NFE's lighting constraint: ‖z_l − L̂‖² against the fitted SH coefficients.

    Args:
        z_l: (B, C, 9) with C = 3 (per channel) or 1 (compared with the channel mean).
        sh: (B, 3, 9) pseudo ground truth.
    """
    target = sh if z_l.shape[1] == sh.shape[1] else sh.mean(1, keepdim=True)
    return _sq(z_l, target).mean()


def mask_loss(mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """NFE's mask constraint: ‖M − M̂‖₁ against the fitted face mask.

    Args:
        mask, target: (B, 1, S, S) in [0, 1].
    """
    return _l1(mask, target).mean()


def frontal_samples(yaw: torch.Tensor, max_yaw_deg: float) -> torch.Tensor:
    """(B,) bool: near-frontal by the pseudo ground-truth pose, |yaw| < threshold (§3.1)."""
    return yaw.abs() < max_yaw_deg


def multilinear_loss(
    target: torch.Tensor,
    synthesis: torch.Tensor,
    valid: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """E = ‖X − B_(1)(Z^(1) ⊙ ... ⊙ Z^(M))‖²_F, the general form (Eq. 15).

    Only the ``valid`` samples enter (they are selected, not multiplied by 0,
    so a non-finite value on an excluded sample cannot leak in); the mean runs
    over them, and a batch with none gives 0 that still has a graph.

    Args:
        target: (B, ...) data X; synthesis: (B, ...) the multilinear synthesis.
        valid: (B,) bool or None (all).
        mask: (B, 1, S, S) per-pixel weights for image-shaped data, or None.
    """
    if valid is not None:
        target, synthesis = target[valid], synthesis[valid]
        mask = None if mask is None else mask[valid]
    if synthesis.shape[0] == 0:
        return synthesis.float().sum() * 0.0
    if mask is None:
        return _sq(synthesis, target).mean()
    return _masked_mean((synthesis.float() - target.float()).pow(2), mask)


def shape_loss(shape_3d: torch.Tensor, vertices: torch.Tensor, unit_mm: float) -> torch.Tensor:
    """E_3d = ‖x̂_3d − B ×2 z_exp ×3 z_id‖²₂   (Eq. 12), coordinates in ``unit_mm``.

    Args:
        shape_3d: (B, V, 3) B_(1)(z_exp ⊙ z_id) in mm; vertices: (B, V, 3) fitted shape, mm.
    """
    return multilinear_loss(vertices / unit_mm, shape_3d / unit_mm)


def frontal_loss(
    x: torch.Tensor,
    frontal: torch.Tensor,
    yaw: torch.Tensor,
    max_yaw_deg: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """E_f = ‖x_f − Q ×2 z_l ×3 z_exp ×4 z_id‖²₂ on near-frontal images only   (Eq. 13).

    Args:
        x: (B, 3, S, S) input images; frontal: (B, 3, S, S) Q-synthesis;
        yaw: (B,) pseudo ground-truth yaw (degrees); mask: optional face mask.
    """
    return multilinear_loss(x, frontal, frontal_samples(yaw, max_yaw_deg), mask)


def frontal_normal_loss(
    normals: torch.Tensor,
    frontal_normals: torch.Tensor,
    yaw: torch.Tensor,
    max_yaw_deg: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """E_n = ‖n̂_f − Q ×2 (1/k_l) 1 ×3 z_exp ×4 z_id‖²₂ on near-frontal normal maps   (Eq. 14).

    Args:
        normals: (B, 3, S, S) fitted normals; frontal_normals: (B, 3, S, S) Q-synthesis;
        yaw: (B,) degrees; mask: optional face mask.
    """
    return multilinear_loss(normals, frontal_normals, frontal_samples(yaw, max_yaw_deg), mask)


def generator_losses(
    out: TensorialOutput | Z0Output,
    batch: Batch,
    cfg: TensorialLossConfig,
    disc: Callable[[torch.Tensor], torch.Tensor] | None = None,
    verifier: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, Logs]:
    """The G step: E_x (Eq. 8) plus every enabled constraint, weighted.

    A term is included when :meth:`TensorialLossConfig.active` says so and its
    inputs exist: E_adv needs ``disc``, E_veri ``verifier``, the supervised and
    multilinear terms a :class:`TensorialOutput` (not Z_0) and their pseudo
    ground truth in ``batch``. k_t does not enter: in BEGAN the generator
    minimises L_fake alone.

    Args:
        out: the generator's output for ``batch.image``.
        batch: images and pseudo ground truth.
        cfg: weights, switches, thresholds.
        disc: the BEGAN discriminator (frozen in this step).
        verifier: the frozen face-verification network V.
    """
    x, x_hat = batch.image, out.recon
    terms: dict[str, torch.Tensor] = {}
    logs: Logs = {}
    if cfg.active("recon"):
        terms["recon"] = recon_loss(x, x_hat)
    if cfg.active("adv") and disc is not None:
        terms["adv"] = adversarial_loss(x_hat, disc(x_hat))
    if cfg.active("veri") and verifier is not None:
        with torch.no_grad():
            v_x = verifier(x)
        terms["veri"] = verification_loss(v_x, verifier(x_hat))
    if isinstance(out, TensorialOutput):
        terms.update(_structured_terms(out, batch, cfg, logs))
    total = x_hat.new_zeros((), dtype=torch.float32)
    for name, value in terms.items():
        logs[f"loss/g/{name}"] = value
        total = total + cfg.weight(name) * value
    logs["loss/g/total"] = total
    return total, _detached(logs)


def _structured_terms(
    out: TensorialOutput, b: Batch, cfg: TensorialLossConfig, logs: Logs
) -> dict[str, torch.Tensor]:
    t: dict[str, torch.Tensor] = {}

    def want(name: str, *needed) -> bool:
        return cfg.active(name) and all(v is not None for v in needed)

    if want("pose", b.rotation):
        pose = out.codes.z_p if cfg.pose_on == "code" else out.rotation
        t["pose"] = pose_loss(pose, b.rotation)
    if want("exp", b.exp_coeffs):
        t["exp"] = coefficient_loss(out.exp_pred, b.exp_coeffs)
    if want("id", b.id_coeffs):
        t["id"] = coefficient_loss(out.id_pred, b.id_coeffs)
    if want("normal", b.normals):
        t["normal"] = normal_loss(out.normals, b.normals, b.mask)
    if want("normal_smooth"):
        t["normal_smooth"] = smoothness_loss(out.normals, b.mask)
    if want("unit"):
        t["unit"] = unit_length_loss(out.normals, b.mask)
    if want("light", b.sh):
        t["light"] = light_loss(out.codes.z_l, b.sh)
    if want("albedo_tv"):
        t["albedo_tv"] = albedo_tv_loss(out.albedo, b.mask)
    if want("mask", b.mask):
        t["mask"] = mask_loss(out.mask, b.mask)
    if want("mask_smooth"):
        t["mask_smooth"] = smoothness_loss(out.mask)
    if want("shape3d", b.vertices):
        t["shape3d"] = shape_loss(out.shape_3d, b.vertices, cfg.shape_unit_mm)
    mask = b.mask if cfg.multilinear_masked else None
    thr = cfg.frontal_yaw_deg
    if b.yaw is not None:
        logs["stat/g/frontal"] = frontal_samples(b.yaw, thr).float().mean()
    if want("frontal", b.yaw):
        t["frontal"] = frontal_loss(b.image, out.frontal, b.yaw, thr, mask)
    if want("frontal_normal", b.yaw, b.normals):
        t["frontal_normal"] = frontal_normal_loss(b.normals, out.frontal_normals, b.yaw, thr, mask)
    return t


def discriminator_losses(
    x: torch.Tensor,
    x_fake: torch.Tensor,
    disc: Callable[[torch.Tensor], torch.Tensor],
    k: float,
    cfg: TensorialLossConfig,
) -> tuple[torch.Tensor, Logs]:
    """The D step: L_real − k_t L_fake, with BEGAN's k_{t+1} and M in the logs.

    Args:
        x: (B, 3, S, S) real images; x_fake: (B, 3, S, S) reconstructions (detached).
        disc: the BEGAN discriminator.
        k: the current k_t.
        cfg: γ and λ_k.

    Returns:
        ``(total, logs)`` with ``loss/d/real``, ``loss/d/fake``, ``loss/d/total``,
        ``began/k`` (k_{t+1}, to use in the next D step) and ``began/M``.
    """
    n = x.shape[0]
    d_out = disc(torch.cat([x, x_fake.detach()]))  # one pass over real and fake
    l_real = began_energy(x, d_out[:n])
    l_fake = began_energy(x_fake.detach(), d_out[n:])
    total = discriminator_objective(l_real, l_fake, k)
    lr, lf = float(l_real.detach()), float(l_fake.detach())
    k_next = began_update(k, lr, lf, cfg.gamma, cfg.lambda_k)
    logs = {
        "loss/d/real": l_real,
        "loss/d/fake": l_fake,
        "loss/d/total": total,
        "began/k": torch.tensor(k_next),
        "began/M": torch.tensor(began_convergence(lr, lf, cfg.gamma)),
    }
    return total, _detached(logs)


def _detached(logs: Logs) -> Logs:
    return {k: v.detach() for k, v in logs.items()}
