"""A small landmark regressor for low-resolution crops: the pose judge of generated faces.

MTCNN needs its downloaded weights and does not find landmarks reliably on 32-px
crops, so an edited face from a small generator cannot be read by the pipeline
that reads photos. :class:`LandmarkNet` regresses the five MTCNN-order landmarks
(left eye, right eye, nose, left and right mouth corner) straight from a crop of
a fixed size, and :func:`estimate_pose_batch` turns them into yaw, pitch and roll,
so a generated image is judged by the same geometric head-pose model as a photo,
and by nothing the generator shares.

It trains on rendered faces of the synthetic TRAIN split with their exact
landmarks (:func:`train_landmark_net`), with a random blur on half of each batch
so a generator's softer faces stay inside what it has seen. Its error on the true
renders of unseen identities is the judge's floor, and the tensorial evaluation
reports it beside every figure it judges.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facefactors.constants import CANONICAL_CLASSES
from facefactors.faces.pose import estimate_pose_batch, geodesic_deg, readable_landmarks

FORMAT = "facefactors.faces.landmark_net/1"


@dataclass(frozen=True)
class LandmarkNetConfig:
    """What a landmark judge was trained on (saved in its checkpoint).

    Attributes:
        size: input crop size in pixels (square).
        width: channels of the first convolution (doubling at each stride-2 stage).
        identities, per_identity: synthetic TRAIN faces it learned from.
        intensity: expression intensity range of those faces.
        classes: expression classes of those faces.
        steps, batch_size, lr: the optimiser schedule (Adam, cosine decay).
        seed: face sampling and initialisation seed.
    """

    size: int = 32
    width: int = 32
    identities: int = 200
    per_identity: int = 20
    intensity: tuple[float, float] = (1.0, 1.6)
    classes: tuple[str, ...] = CANONICAL_CLASSES
    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0


class LandmarkNet(nn.Module):
    """Crop (B, 3, S, S) in [-1, 1] → five landmarks (B, 5, 2) in pixels (x, y).

    Three stride-2 conv stages keep a (4·width, S/8, S/8) map whose positions a
    linear head reads: landmarks are places, so the map is flattened, not pooled.
    """

    def __init__(self, size: int = 32, width: int = 32):
        super().__init__()
        if size % 8:
            raise ValueError(f"LandmarkNet needs a size divisible by 8, got {size}.")
        self.size = size
        w = width

        def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *block(3, w, 1), *block(w, w, 2), *block(w, 2 * w, 2), *block(2 * w, 4 * w, 2)
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(4 * w * (size // 8) ** 2, 256), nn.ReLU(), nn.Linear(256, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        u = self.head(self.features(x)).view(-1, 5, 2)  # (B, 5, 2) in units of the size
        return (u + 0.5) * self.size


def random_blur(
    x: torch.Tensor, generator: torch.Generator, max_sigma: float = 1.2
) -> torch.Tensor:
    """Gaussian blur of half the batch, each with its own sigma in (0, max_sigma] px."""
    b = x.shape[0]
    pick = torch.rand(b, generator=generator) < 0.5
    if not pick.any():
        return x
    sigma = torch.rand(int(pick.sum()), generator=generator) * max_sigma + 1e-3
    r = torch.arange(-2, 3, dtype=x.dtype)
    k = torch.exp(-(r[None] ** 2) / (2 * sigma[:, None] ** 2))
    k = k / k.sum(1, keepdim=True)  # (n, 5) separable kernels
    sub = x[pick]
    n, c, h, w = sub.shape
    flat = sub.reshape(1, n * c, h, w)
    kx = k.repeat_interleave(c, 0)[:, None, None, :]  # (n c, 1, 1, 5)
    flat = F.conv2d(F.pad(flat, (2, 2, 0, 0), mode="replicate"), kx, groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, 2, 2), mode="replicate"), kx.transpose(2, 3), groups=n * c)
    out = x.clone()
    out[pick] = flat.reshape(n, c, h, w)
    return out


def _faces(cfg: LandmarkNetConfig, split: str, identities: int, per_identity: int) -> dict:
    from facefactors.synth.dataset import SynthFaces
    from facefactors.synth.sampling import SynthConfig

    ds = SynthFaces(
        split, identities=identities, per_identity=per_identity, size=cfg.size, seed=cfg.seed,
        maps=False, config=SynthConfig(expression_intensity=tuple(cfg.intensity),
                                       classes=tuple(cfg.classes)),
    )  # fmt: skip
    parts: dict[str, list[torch.Tensor]] = {"image": [], "landmarks5": [], "rotation": []}
    for start in range(0, len(ds), 512):
        b = ds.batch(range(start, min(start + 512, len(ds))))
        for k in parts:
            parts[k].append(b[k])
    return {k: torch.cat(v) for k, v in parts.items()}


def train_landmark_net(cfg: LandmarkNetConfig, log: Any = None) -> LandmarkNet:
    """Fit a :class:`LandmarkNet` to the exact landmarks of synthetic TRAIN faces."""
    torch.manual_seed(cfg.seed)
    data = _faces(cfg, "train", cfg.identities, cfg.per_identity)
    x, y = data["image"], data["landmarks5"] / cfg.size - 0.5
    net = LandmarkNet(cfg.size, cfg.width)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    net.train()
    for step in range(cfg.steps):
        idx = torch.randint(0, len(x), (cfg.batch_size,), generator=gen)
        pred = net.head(net.features(random_blur(x[idx], gen)))
        loss = F.smooth_l1_loss(pred.view(-1, 5, 2), y[idx], beta=0.01)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if log is not None and (step + 1) % 500 == 0:
            log(f"landmark judge step {step + 1}/{cfg.steps}: loss {loss.item():.5f}")
    return net.eval()


@torch.no_grad()
def predict_landmarks(net: LandmarkNet, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """(N, 3, H, W) crops in [-1, 1] → (N, 5, 2) landmarks in pixels of ``net.size``."""
    net.eval()
    outs = [net(images[s : s + batch].clamp(-1, 1)) for s in range(0, len(images), batch)]
    return torch.cat(outs) if outs else torch.zeros(0, 5, 2)


def pose_rotation(landmarks: np.ndarray) -> np.ndarray:
    """(N, 5, 2) landmarks → (N, 3, 3) head rotations by the calibrated 5-point model.

    Faces whose landmarks hold no pose (the mouth not below the eyes: a generator's
    broken face) get NaN matrices, so their errors are NaN and counted apart.
    """
    from facefactors.synth.scene import rotation_matrix

    lm = np.asarray(landmarks, np.float64)
    ok = readable_landmarks(lm)
    out = np.full((len(lm), 3, 3), np.nan)
    if ok.any():
        ypr = estimate_pose_batch(lm[ok])
        out[ok] = rotation_matrix(ypr[:, 0], ypr[:, 1], ypr[:, 2])
    return out


def landmark_pose(net: LandmarkNet, images: torch.Tensor) -> np.ndarray:
    """Head rotations (N, 3, 3) float64 read from crops: landmarks → angles → matrix."""
    return pose_rotation(predict_landmarks(net, images).double().numpy())


def judge_floor(net: LandmarkNet, cfg: LandmarkNetConfig, identities: int = 20) -> dict[str, float]:
    """Landmark error (px) and pose error (°) on true renders of unseen TEST identities.

    ``pose_deg_exact_landmarks`` is the 5-point pose model's own error on the exact
    landmarks: the part of the floor that no landmark regressor can remove.
    """
    data = _faces(cfg, "test", identities, 10)
    lm = predict_landmarks(net, data["image"])
    true_rot = data["rotation"].double().numpy()
    exact = pose_rotation(data["landmarks5"].double().numpy())
    return {
        "faces": int(len(lm)),
        "landmark_px": float((lm - data["landmarks5"]).norm(dim=-1).mean()),
        "pose_deg": finite_mean(geodesic_deg(landmark_pose(net, data["image"]), true_rot)),
        "pose_deg_exact_landmarks": float(geodesic_deg(exact, true_rot).mean()),
    }


def finite_mean(values: np.ndarray) -> float | None:
    """Mean of the finite entries (None when there are none)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else None


def save_landmark_net(path: str | Path, net: LandmarkNet, cfg: LandmarkNetConfig) -> Path:
    """Atomic state-dict checkpoint with its config."""
    from facefactors.checkpoint import save_checkpoint

    cfg_dict = asdict(cfg) | {"intensity": list(cfg.intensity), "classes": list(cfg.classes)}
    return save_checkpoint(path, {"format": FORMAT, "config": cfg_dict, "model": net.state_dict()})


def load_landmark_net(path: str | Path) -> tuple[LandmarkNet, LandmarkNetConfig]:
    """Load a judge saved by :func:`save_landmark_net` (``weights_only``)."""
    from facefactors.checkpoint import load_checkpoint
    from facefactors.errors import CheckpointError

    state = load_checkpoint(path)
    if state.get("format") != FORMAT or "config" not in state or "model" not in state:
        raise CheckpointError(f"{path} is not a landmark judge checkpoint ({FORMAT}).")
    c = dict(state["config"])
    cfg = LandmarkNetConfig(
        **(c | {"intensity": tuple(c["intensity"]), "classes": tuple(c["classes"])})
    )
    net = LandmarkNet(cfg.size, cfg.width)
    net.load_state_dict(state["model"])
    return net.eval(), cfg


def load_or_train_landmark_net(
    path: str | Path, cfg: LandmarkNetConfig, log: Any = None
) -> tuple[LandmarkNet, LandmarkNetConfig]:
    """Reuse the judge at ``path`` when it was trained with ``cfg``; else train and save it."""
    path = Path(path)
    if path.is_file():
        net, saved = load_landmark_net(path)
        if saved == cfg:
            return net, saved
        if log is not None:
            log(f"{path} was trained with other settings; training a new landmark judge.")
    net = train_landmark_net(cfg, log)
    save_landmark_net(path, net, cfg)
    return net, cfg
