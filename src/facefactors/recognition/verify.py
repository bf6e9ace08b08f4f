"""Face verification on held-out identities (LFW-style protocol).

Pairs of images are drawn from identities never seen in training, half of them
from the same person and half from different people. A pair is called "same"
when the cosine similarity of the two embeddings exceeds a threshold; the
reported accuracy picks that threshold on k−1 folds and scores the k-th, so the
threshold never sees the pairs it is judged on.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facefactors.errors import DataError


def make_pairs(
    labels: np.ndarray, num_pairs: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``num_pairs // 2`` same-identity and as many different-identity pairs.

    Args:
        labels: (N,) identity of each image.
        num_pairs: total pairs wanted (rounded down to even).
        seed: RNG seed, so every evaluation uses the same pairs.

    Returns:
        ``(a, b, same)``: (P,) image indices and (P,) bool, same pairs first.

    Raises:
        DataError: no identity has two images, or there is only one identity.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == u) for u in np.unique(labels)]
    multi = [g for g in groups if len(g) >= 2]
    if not multi or len(groups) < 2:
        raise DataError(
            "Verification needs at least two identities and one identity with two images; "
            f"got {len(groups)} identities, {len(multi)} with two or more images."
        )
    half = max(1, num_pairs // 2)
    same_a, same_b = [], []
    for gi in rng.integers(len(multi), size=half):
        a, b = rng.choice(multi[gi], size=2, replace=False)
        same_a.append(a)
        same_b.append(b)
    diff_a, diff_b = [], []
    for g1, g2 in (rng.choice(len(groups), size=2, replace=False) for _ in range(half)):
        diff_a.append(rng.choice(groups[g1]))
        diff_b.append(rng.choice(groups[g2]))
    a = np.array(same_a + diff_a, dtype=np.int64)
    b = np.array(same_b + diff_b, dtype=np.int64)
    return a, b, np.r_[np.ones(half, bool), np.zeros(half, bool)]


def best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The threshold ``t`` maximising accuracy of ``score > t ⇔ same``, and that accuracy.

    Candidates are midpoints between consecutive sorted scores, plus one below
    the lowest and one above the highest, so every distinct split is tried;
    among equally good thresholds the lowest wins.

    Args:
        scores: (P,) similarity per pair.
        same: (P,) bool ground truth.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], same[order]
    # Thresholds between position i-1 and i call items [i:] "same".
    # Correct = different-pairs below + same-pairs at/above.
    neg_below = np.r_[0, np.cumsum(~y)]
    pos_above = y.sum() - np.r_[0, np.cumsum(y)]
    correct = neg_below + pos_above
    # Only split where the score changes; ties cannot be separated.
    valid = np.r_[True, s[1:] > s[:-1], True]
    correct = np.where(valid, correct, -1)
    i = int(np.argmax(correct))
    cands = np.r_[s[0] - 1e-6, (s[1:] + s[:-1]) / 2, s[-1] + 1e-6]
    return float(cands[i]), float(correct[i] / len(s))


def kfold_accuracy(
    scores: np.ndarray, same: np.ndarray, folds: int = 10, seed: int = 0
) -> tuple[float, float]:
    """LFW-style accuracy: threshold fitted on k−1 folds, scored on the held-out fold.

    Returns:
        Mean and standard deviation of the per-fold accuracies.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    folds = max(2, min(folds, len(scores)))
    parts = np.array_split(np.random.default_rng(seed).permutation(len(scores)), folds)
    accs = []
    for k, test in enumerate(parts):
        train = np.concatenate([p for j, p in enumerate(parts) if j != k])
        t, _ = best_threshold(scores[train], same[train])
        accs.append(float(np.mean((scores[test] > t) == same[test])))
    return float(np.mean(accs)), float(np.std(accs))


def verification_metrics(scores: np.ndarray, same: np.ndarray, folds: int = 10) -> dict[str, float]:
    """``acc`` (k-fold), ``acc_std``, ``auc`` (ROC AUC), ``best_threshold`` and ``best_acc`` (all pairs)."""
    from sklearn.metrics import roc_auc_score

    acc, std = kfold_accuracy(scores, same, folds)
    t, best = best_threshold(scores, same)
    return {
        "acc": acc,
        "acc_std": std,
        "auc": float(roc_auc_score(np.asarray(same, bool), scores)),
        "best_threshold": t,
        "best_acc": best,
        "pairs": int(len(scores)),
    }


@torch.no_grad()
def embed(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int = 256,
    flip: bool = True,
    device: torch.device | str = "cpu",
    autocast_bf16: bool = False,
) -> torch.Tensor:
    """L2-normalised embeddings of uint8 or float images, in eval mode.

    Args:
        model: a backbone; its train/eval mode is restored afterwards.
        images: (N, 3, H, W) uint8, or float already in [-1, 1].
        flip: add the embedding of the mirrored image (the usual test-time trick).

    Returns:
        (N, D) float32 unit vectors on the CPU.
    """
    from facefactors.imaging import from_uint8

    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, images.shape[0], batch_size):
            x = images[i : i + batch_size]
            x = (from_uint8(x) if x.dtype == torch.uint8 else x.float()).to(device)
            with torch.autocast(
                torch.device(device).type, dtype=torch.bfloat16, enabled=autocast_bf16
            ):
                e = model(x).float()
                if flip:
                    e = e + model(x.flip(3)).float()
            out.append(F.normalize(e, dim=1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


def evaluate_verification(
    model: nn.Module,
    images: torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    num_pairs: int = 3000,
    folds: int = 10,
    seed: int = 0,
    **embed_kwargs,
) -> dict[str, float]:
    """Embed held-out images, draw balanced pairs and score them with cosine similarity.

    Args:
        model: the backbone being evaluated.
        images: (N, 3, H, W) images of identities not used in training.
        labels: (N,) their identities.
        num_pairs: total pairs (half same, half different).
        folds: folds for the threshold cross-validation.
        seed: pair-sampling seed.
        **embed_kwargs: passed to :func:`embed` (batch_size, flip, device, autocast_bf16).

    Returns:
        :func:`verification_metrics` of the pair scores.
    """
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    a, b, same = make_pairs(labels, num_pairs, seed)
    emb = embed(model, images, **embed_kwargs)
    scores = (emb[a] * emb[b]).sum(1).numpy()
    return verification_metrics(scores, same, folds)
