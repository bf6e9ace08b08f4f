"""MTCNN face detection (Zhang et al., 2016): a three-stage cascade with 5 landmarks.

1. P-Net runs fully convolutionally over an image pyramid (smallest face
   ``min_face_size`` pixels, scale factor 0.709). Every output cell whose face
   probability passes ``thresholds[0]`` proposes a 12x12 window (stride 2) mapped
   back to the image; NMS (IoU 0.5) per scale, then NMS (IoU 0.7) across scales,
   then box regression and squaring.
2. R-Net re-scores 24x24 crops of those boxes (``thresholds[1]``); NMS 0.7,
   regression, squaring.
3. O-Net re-scores 48x48 crops (``thresholds[2]``) and outputs 5 landmarks; box
   regression and a final NMS with the "min" overlap (0.7).

Images of the same size run as one batch; boxes carry their image index and
every NMS is per image (:func:`~facefactors.faces.nms.batched_nms`). An image of
more than ``max_pixels`` (default :data:`DETECT_MAX_PIXELS`, 2048²) is detected on an
area-downscaled copy of at most that many pixels, its boxes and landmarks mapped
back to full resolution: so the detector's memory is bounded by the batch size
whatever the image sizes (six 8000x6000 photos needed more than 10 GB at full
resolution), at the price of a larger smallest face in such images
(``max(min_face_size, 12 / scale)`` pixels of the original).

Boxes are continuous pixel coordinates ``[x1, y1, x2, y2]`` with ``x2 - x1`` the
width. Landmarks are in the order left eye, right eye, nose, left mouth corner,
right mouth corner, "left" meaning the image's left (smaller x).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch

from facefactors.errors import DataError
from facefactors.faces.mtcnn_nets import ONet, PNet, RNet
from facefactors.faces.nms import batched_nms
from facefactors.faces.resample import area_resize, integral_images

_STRIDE = 2
_CELL = 12
_PYRAMID_FACTOR = 0.709
# IoU thresholds: P-Net within a scale, P-Net across scales, R-Net; O-Net uses "min".
_NMS_PNET_SCALE, _NMS_PNET_ALL, _NMS_RNET, _NMS_ONET = 0.5, 0.7, 0.7, 0.7
# Larger images are detected on a downscaled copy (see the module docstring).
DETECT_MAX_PIXELS = 2048 * 2048


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Pixel values 0..255 -> the networks' input range, (x - 127.5) / 128."""
    return (x - 127.5) * 0.0078125


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float) -> list[float]:
    """Scales at which a ``min_face_size`` face (and every larger one) fills a 12 px cell."""
    m = _CELL / float(min_face_size)
    side = min(height, width) * m
    scales = []
    while side >= _CELL:
        scales.append(m * factor ** len(scales))
        side *= factor
    return scales


def generate_boxes(
    prob: torch.Tensor, reg: torch.Tensor, scale: float, threshold: float
) -> torch.Tensor:
    """P-Net output cells above ``threshold`` as candidate windows in image coordinates.

    Args:
        prob: (B, H', W') face probabilities.
        reg: (B, 4, H', W') box offsets.
        scale: the pyramid scale of this output.
        threshold: minimum probability.

    Returns:
        (K, 10) rows ``[image, x1, y1, x2, y2, score, dx1, dy1, dx2, dy2]``.
    """
    mask = prob >= threshold
    idx = mask.nonzero()
    img = idx[:, 0].to(prob.dtype)
    y = idx[:, 1].to(prob.dtype) * _STRIDE
    x = idx[:, 2].to(prob.dtype) * _STRIDE
    boxes = torch.stack([x, y, x + _CELL, y + _CELL], dim=1) / scale
    return torch.cat([img[:, None], boxes, prob[mask][:, None], reg.permute(0, 2, 3, 1)[mask]], 1)


def regress_boxes(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Apply offsets (N, 4), in units of box width/height, to boxes (N, 4)."""
    wh = (boxes[:, 2:4] - boxes[:, 0:2]).repeat(1, 2)
    return boxes + reg * wh


def square_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each (N, 4) box to a square with side max(w, h), keeping its centre."""
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    side = wh.max(dim=1, keepdim=True).values
    centre = boxes[:, 0:2] + wh / 2
    return torch.cat([centre - side / 2, centre + side / 2], dim=1)


def crop_and_resize(
    images: np.ndarray, image_index: np.ndarray, boxes: np.ndarray, size: int
) -> np.ndarray:
    """Crop integer boxes (zero padding outside the image) and resize them.

    Args:
        images: (B, H, W, 3) uint8.
        image_index: (N,) image of each box.
        boxes: (N, 4) integer boxes ``[x1, y1, x2, y2]`` with x2 > x1, y2 > y1.
        size: output side.

    Returns:
        (N, size, size, 3) uint8 crops.
    """
    import cv2

    _b, h, w, _c = images.shape
    out = np.empty((len(boxes), size, size, 3), dtype=np.uint8)
    for k, (i, (x1, y1, x2, y2)) in enumerate(zip(image_index, boxes)):
        if x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h:
            patch = images[i, y1:y2, x1:x2]
        else:
            patch = np.zeros((y2 - y1, x2 - x1, 3), dtype=np.uint8)
            sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
            if sx2 > sx1 and sy2 > sy1:
                patch[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = images[i, sy1:sy2, sx1:sx2]
        # Area averaging when shrinking avoids aliasing; bilinear when enlarging.
        interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
        out[k] = cv2.resize(patch, (size, size), interpolation=interp)
    return out


def mirror_points(points: torch.Tensor) -> torch.Tensor:
    """O-Net points (N, 10) of a mirrored crop -> the same points for the unmirrored crop.

    x fractions become ``1 - x`` and left/right swap (eyes, mouth corners).
    """
    order = [1, 0, 2, 4, 3]
    return torch.cat([1 - points[:, :5][:, order], points[:, 5:][:, order]], dim=1)


def _as_image_list(images: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Accept one (H, W, 3) image, a (B, H, W, 3) array or a list; check dtype and shape."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    out = []
    for k, im in enumerate(images):
        im = np.asarray(im)
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise DataError(
                f"MTCNN input image {k} must be an RGB (H, W, 3) uint8 array, "
                f"got shape {im.shape} and dtype {im.dtype}."
            )
        out.append(np.ascontiguousarray(im))
    return out


class MTCNN:
    """The MTCNN detector with the facenet-pytorch 2.6.0 weights.

    Args:
        weights_dir: folder with ``pnet.pt``, ``rnet.pt``, ``onet.pt`` (``None``: the
            cache folder filled by ``facefactors weights fetch mtcnn``).
        device: torch device for the three networks.
        min_face_size: smallest face side to find, in pixels.
        thresholds: face-probability thresholds of P-Net, R-Net and O-Net.
        mirror_landmarks: average O-Net's landmarks over each final crop and its
            mirror image. Boxes and scores are the standard cascade's; the landmarks
            (hence yaw) become closer to mirror-equivariant: on the two test photos
            ``|yaw(image) + yaw(flipped image)|`` drops from 6.5 to 3.1 degrees at
            most (Grace Hopper; 3.9 to 2.7 on the 640x480 bench frame), for one
            more O-Net pass per detected face.
        max_pixels: images with more pixels are detected on a downscaled copy
            (``None``: :data:`DETECT_MAX_PIXELS`).

    Raises:
        WeightsError: a weight file is missing or does not verify.
    """

    def __init__(
        self,
        weights_dir: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        min_face_size: float = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        mirror_landmarks: bool = True,
        max_pixels: int | None = None,
    ) -> None:
        from facefactors.faces.weights import require_mtcnn_weights

        paths = require_mtcnn_weights(weights_dir)
        self.device = torch.device(device)
        self.min_face_size = float(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.mirror_landmarks = mirror_landmarks
        self.max_pixels = int(DETECT_MAX_PIXELS if max_pixels is None else max_pixels)
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        for name, net in (("pnet", self.pnet), ("rnet", self.rnet), ("onet", self.onet)):
            net.load_state_dict(torch.load(paths[name], map_location="cpu", weights_only=True))
            net.to(self.device, memory_format=torch.channels_last).eval()

    def detect(
        self, images: np.ndarray | Sequence[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Detect faces.

        Args:
            images: one RGB uint8 (H, W, 3) image, a (B, H, W, 3) array, or a list of
                images (sizes may differ; equal sizes are batched together).

        Returns:
            One ``(boxes, landmarks)`` pair per image: boxes (N, 5) float32 rows
            ``[x1, y1, x2, y2, score]`` by decreasing score, landmarks (N, 5, 2)
            float32 ``(x, y)``. Boxes may extend past the image border.
        """
        ims = _as_image_list(images)
        full = [im.shape[:2] for im in ims]
        results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(ims)
        by_size: dict[tuple[tuple[int, int], tuple[int, int]], list[int]] = {}
        for k, im in enumerate(ims):
            ims[k] = downscale_for_detection(im, self.max_pixels)
            by_size.setdefault((ims[k].shape[:2], full[k]), []).append(k)
        for ((h, w), (oh, ow)), ks in by_size.items():
            batch = np.stack([ims[k] for k in ks])
            # A face of min_face_size original pixels is min_face_size * h / H pixels
            # here; P-Net cannot look for faces below its 12 px window.
            scale = h / oh
            min_face = self.min_face_size if scale == 1 else max(12.0, self.min_face_size * scale)
            for k, (boxes, landmarks) in zip(ks, self._detect_batch(batch, min_face)):
                if (oh, ow) != (h, w):  # back to the original's pixels
                    sx, sy = ow / w, oh / h
                    boxes = boxes.copy()
                    boxes[:, [0, 2]] *= sx
                    boxes[:, [1, 3]] *= sy
                    landmarks = landmarks * np.array([sx, sy], np.float32)
                results[k] = (boxes, landmarks)
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def _detect_batch(
        self, images: np.ndarray, min_face: float
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Run the cascade on (B, H, W, 3) uint8 images of one size."""
        b = images.shape[0]
        empty = [(np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32))] * b
        cand = self._stage_pnet(images, min_face)
        if cand.shape[0] == 0:
            return empty
        img, boxes = cand[:, 0].long(), cand[:, 1:5]

        prob, reg = self.rnet(self._crops(images, img, boxes, 24))
        keep = prob >= self.thresholds[1]
        img, boxes, prob, reg = img[keep], boxes[keep], prob[keep], reg[keep]
        keep = batched_nms(boxes, prob, img, _NMS_RNET)
        img, boxes = img[keep], integer_boxes(square_boxes(regress_boxes(boxes[keep], reg[keep])))
        if img.numel() == 0:
            return empty

        img, boxes, prob, landmarks = self.onet_stage(images, img, boxes)

        rows = torch.cat([boxes, prob[:, None]], dim=1).float().cpu().numpy()
        lms = landmarks.float().cpu().numpy()
        img_np = img.cpu().numpy()
        return [(rows[img_np == i], lms[img_np == i]) for i in range(b)]

    def onet_stage(
        self, images: np.ndarray, img: torch.Tensor, boxes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The cascade's last stage: O-Net on square integer boxes (face tracking reuses it).

        Args:
            images: (B, H, W, 3) uint8 images of one size.
            img: (N,) int64 image index of each box, on the detector's device.
            boxes: (N, 4) square boxes on whole pixels (see :func:`integer_boxes`).

        Returns:
            ``(img, boxes, prob, landmarks)`` of the M faces O-Net keeps: (M,), (M, 4)
            regressed boxes, (M,) scores and (M, 5, 2) landmarks in image pixels, by
            decreasing score after the per-image "min" NMS.
        """
        crops = self._crops(images, img, boxes, 48)
        prob, reg, pts = self.onet(crops)
        keep = prob >= self.thresholds[2]
        img, boxes, prob, reg, pts = img[keep], boxes[keep], prob[keep], reg[keep], pts[keep]
        if self.mirror_landmarks and img.numel() > 0:
            pts = (pts + mirror_points(self.onet(crops[keep].flip(3))[2])) / 2
        wh = boxes[:, 2:4] - boxes[:, 0:2]
        # O-Net gives five x fractions then five y fractions of the crop it saw.
        landmarks = torch.stack(
            [
                boxes[:, None, 0] + wh[:, None, 0] * pts[:, :5],
                boxes[:, None, 1] + wh[:, None, 1] * pts[:, 5:],
            ],
            dim=2,
        )
        boxes = regress_boxes(boxes, reg)
        keep = batched_nms(boxes, prob, img, _NMS_ONET, mode="min")
        return img[keep], boxes[keep], prob[keep], landmarks[keep]

    def _stage_pnet(self, images: np.ndarray, min_face: float) -> torch.Tensor:
        """P-Net over the pyramid; (K, 5) rows ``[image, x1, y1, x2, y2]`` of squared boxes."""
        _b, h, w, _ = images.shape
        # One integral image serves every scale (see facefactors.faces.resample).
        integral = integral_images(images)
        per_scale = []
        for scale in pyramid_scales(h, w, min_face, _PYRAMID_FACTOR):
            size = (math.ceil(h * scale), math.ceil(w * scale))
            prob, reg = self.pnet(normalize(self._to_tensor(area_resize(integral, size))))
            c = generate_boxes(prob, reg, scale, self.thresholds[0])
            per_scale.append(c[batched_nms(c[:, 1:5], c[:, 5], c[:, 0], _NMS_PNET_SCALE)])
        c = torch.cat(per_scale) if per_scale else torch.zeros(0, 10, device=self.device)
        c = c[batched_nms(c[:, 1:5], c[:, 5], c[:, 0], _NMS_PNET_ALL)]
        boxes = integer_boxes(square_boxes(regress_boxes(c[:, 1:5], c[:, 6:10])))
        return torch.cat([c[:, :1], boxes], dim=1)

    def _to_tensor(self, images: np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) uint8 or float32 -> (N, 3, H, W) float32 on the device, 0..255.

        The tensor stays in channels-last memory order (a free view of NHWC data):
        the convolutions with 3 to 32 channels run ~1.5x faster that way on CPU.
        """
        return torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float()

    def _crops(
        self, images: np.ndarray, img: torch.Tensor, boxes: torch.Tensor, size: int
    ) -> torch.Tensor:
        """Normalised (N, 3, size, size) crops of integer boxes for R-Net / O-Net."""
        crops = crop_and_resize(
            images, img.cpu().numpy(), boxes.cpu().numpy().astype(np.int64), size
        )
        return normalize(self._to_tensor(crops))


def downscale_for_detection(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """``image`` itself, or an area-downscaled copy with at most ``max_pixels`` pixels.

    Args:
        image: (H, W, 3) uint8.
        max_pixels: the largest pixel count detected at full resolution.
    """
    import cv2

    h, w = image.shape[:2]
    if h * w <= max_pixels:
        return image
    s = math.sqrt(max_pixels / (h * w))
    size = (max(1, math.floor(w * s)), max(1, math.floor(h * s)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def integer_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """Round boxes to whole pixels (at least 1 px wide), the grid the crops are cut on."""
    r = boxes.round()
    r[:, 2:4] = torch.maximum(r[:, 2:4], r[:, 0:2] + 1)
    return r
