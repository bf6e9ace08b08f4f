"""Expression recognition for users: images in, one labelled prediction per face out.

:class:`ExpressionRecognizer` wraps a trained E_exp + C_exp
(:class:`~facefactors.export.classifier.ExpressionClassifier`) and the face pipeline
(MTCNN, 5-point alignment, landmark head pose); an exported ``.onnx`` model
(:class:`~facefactors.export.runtime.OnnxExpressionClassifier`, onnxruntime on the
CPU) can take the classifier's place. ``predict`` accepts paths, RGB
uint8 arrays, PIL images or already aligned tensors and returns
:class:`~facefactors.inference.predictions.Predictions` (a list of
:class:`~facefactors.inference.predictions.FacePrediction` with ``to_dataframe``,
``to_csv`` and ``to_json``).

The MTCNN detector is created on first use, so aligned tensors can be classified
on a machine without the MTCNN weights.

Example:
    >>> rec = ExpressionRecognizer.from_checkpoint("runs/rafdb/model.pt")
    >>> preds = rec.predict(["a.jpg", "b.png"])
    >>> preds.to_dataframe()[["file", "label", "score"]]
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from facefactors.errors import DataError
from facefactors.inference.io import VideoFrames, is_video_name
from facefactors.inference.predictions import FacePrediction, Predictions

if TYPE_CHECKING:
    from facefactors.export.classifier import ExpressionClassifier
    from facefactors.export.runtime import OnnxExpressionClassifier
    from facefactors.faces.pipeline import Face, FacePipeline
    from facefactors.inference.tracking import FaceTracker


def crops_to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 RGB crops -> (N, 3, S, S) float32 in [-1, 1], ``(x/255 - 0.5)/0.5``.

    Raises:
        DataError: the array is not uint8 (float crops would be scaled wrongly).
    """
    if crops.dtype != np.uint8:
        raise DataError(f"Aligned crops must be a uint8 (N, S, S, 3) array, got {crops.dtype}.")
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def _as_rgb_array(image: Any, where: str) -> np.ndarray:
    """A numpy or PIL image as (H, W, 3) uint8 RGB (grey is replicated, alpha dropped)."""
    if not isinstance(image, np.ndarray):  # a PIL image (checked by the caller)
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    if image.dtype != np.uint8:
        raise DataError(f"{where} must be a uint8 image array, got dtype {image.dtype}.")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise DataError(f"{where} must be an RGB (H, W, 3) array, got shape {image.shape}.")
    return np.ascontiguousarray(image[:, :, :3])


def _is_pil(obj: Any) -> bool:
    # Checked by name so that PIL is only imported when a PIL image is passed.
    return any(c.__module__.startswith("PIL.") for c in type(obj).__mro__)


class ExpressionRecognizer:
    """Detect, align and classify the facial expression of every face.

    Args:
        classifier: E_exp + C_exp; it is moved to ``device`` (channels-last on CPU)
            and put in eval mode. An ONNX classifier only accepts the CPU.
        device: torch device for the classifier and MTCNN.
        weights_dir: MTCNN weight folder (``None``: the cache folder).
        min_face_size: MTCNN's smallest face in pixels.
        max_faces: keep at most this many faces per image (``None``: all).
        batch_size: aligned faces per classifier call, and images per MTCNN call.
    """

    def __init__(
        self,
        classifier: ExpressionClassifier | OnnxExpressionClassifier,
        device: str | torch.device = "cpu",
        weights_dir: str | os.PathLike | None = None,
        min_face_size: float = 20,
        max_faces: int | None = None,
        batch_size: int = 32,
    ) -> None:
        self.device = torch.device(device)
        # NHWC convolutions: ResNet-18 at 112 px ran 10-20% faster per face on CPU
        # (measured, batch 8, one thread); the logits agree to 2e-8.
        self._memory_format = torch.channels_last if self.device.type == "cpu" else None
        self.classifier = classifier.to(self.device, memory_format=self._memory_format).eval()
        self.weights_dir = weights_dir
        self.min_face_size = float(min_face_size)
        self.max_faces = max_faces
        self.batch_size = max(1, int(batch_size))
        self._pipeline: FacePipeline | None = None

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        weights_dir: str | os.PathLike | None = None,
        min_face_size: float = 20,
        **kwargs: Any,
    ) -> ExpressionRecognizer:
        """Load an exported ``model.pt``, a training ``last.pt`` or an exported ``.onnx``.

        See :func:`~facefactors.export.classifier.load_expression_model`. An ``.onnx`` file
        (fp32 or int8, from ``facefactors export``) runs in onnxruntime on the CPU:
        a ``device`` other than ``"cpu"`` is refused.

        Raises:
            CheckpointError: the file is missing, truncated or not an expression model.
            FaceFactorsError: an ``.onnx`` file with a non-CPU ``device``, or without
                onnx/onnxruntime installed.
        """
        from facefactors.export.classifier import load_expression_model

        return cls(
            load_expression_model(path),
            device=device,
            weights_dir=weights_dir,
            min_face_size=min_face_size,
            **kwargs,
        )

    @property
    def classes(self) -> list[str]:
        """Class names in probability order."""
        return list(self.classifier.classes)

    @property
    def input_size(self) -> int:
        """Side S of the aligned crops the classifier takes."""
        return int(self.classifier.input_size)

    @property
    def pipeline(self) -> FacePipeline:
        """MTCNN + alignment + pose, built on first use.

        Raises:
            WeightsError: the MTCNN weights are missing (names the fetch command).
        """
        if self._pipeline is None:
            from facefactors.faces.mtcnn import MTCNN
            from facefactors.faces.pipeline import FacePipeline

            mtcnn = MTCNN(self.weights_dir, device=self.device, min_face_size=self.min_face_size)
            self._pipeline = FacePipeline(mtcnn, size=self.input_size, max_faces=self.max_faces)
        return self._pipeline

    def tracker(self, detect_every: int = 15) -> FaceTracker:
        """A fresh :class:`~facefactors.inference.tracking.FaceTracker` for one video."""
        from facefactors.inference.tracking import FaceTracker

        return FaceTracker(self.pipeline.mtcnn, detect_every=detect_every)

    @torch.inference_mode()
    def probabilities(self, aligned: torch.Tensor | np.ndarray) -> np.ndarray:
        """Class probabilities of aligned faces, in batches of ``batch_size``.

        Args:
            aligned: (N, 3, S, S) float tensor in [-1, 1], or (N, S, S, 3) uint8 crops.

        Returns:
            (N, K) float32 probabilities; rows sum to 1.
        """
        x = crops_to_tensor(aligned) if isinstance(aligned, np.ndarray) else aligned
        k = len(self.classes)
        if x.shape[0] == 0:
            return np.zeros((0, k), dtype=np.float32)
        out = []
        for i in range(0, x.shape[0], self.batch_size):
            xb = x[i : i + self.batch_size].to(self.device)
            if self._memory_format is not None:
                xb = xb.contiguous(memory_format=self._memory_format)
            out.append(torch.softmax(self.classifier(xb).float(), 1))
        return torch.cat(out).cpu().numpy()

    def classify_faces(
        self, faces: Sequence[Sequence[Face]], sources: Sequence[str], frames: Sequence[int | None]
    ) -> list[list[FacePrediction]]:
        """Classify detected faces in one batch.

        Args:
            faces: per image, its :class:`~facefactors.faces.pipeline.Face` list.
            sources: per image, the file name (or ``input[i]``).
            frames: per image, the video frame index (``None`` for still images).

        Returns:
            Per image, one :class:`FacePrediction` per face, in detection order.
        """
        flat = [f for fs in faces for f in fs]
        s = self.input_size
        crops = np.stack([f.aligned for f in flat]) if flat else np.zeros((0, s, s, 3), np.uint8)
        probs = iter(self.probabilities(crops))
        return [
            [
                FacePrediction.from_probabilities(
                    next(probs), self.classes, src, frame, k, detection=face
                )
                for k, face in enumerate(fs)
            ]
            for fs, src, frame in zip(faces, sources, frames)
        ]

    def predict_arrays(
        self,
        images: Sequence[np.ndarray],
        sources: Sequence[str],
        frames: Sequence[int | None] | None = None,
    ) -> list[list[FacePrediction]]:
        """Detect, align and classify RGB uint8 (H, W, 3) images; per image its faces."""
        frames = [None] * len(images) if frames is None else frames
        faces = self.pipeline.process_batch(images)
        return self.classify_faces(faces, sources, frames)

    def predict(self, images: Any) -> Predictions:
        """Predict the expression of every face in ``images``.

        Args:
            images: one item or a list of items, each a path, an RGB uint8 (H, W, 3)
                array (or a (B, H, W, 3) stack), a PIL image, or an aligned float
                tensor (B, 3, S, S) / (3, S, S) in [-1, 1]. Aligned tensors skip
                detection: box, landmarks and pose are ``None``, one face per row.
                A path with a video suffix is read with :meth:`predict_video`
                (every frame, tracking on).

        Returns:
            :class:`Predictions` in input order (faces by decreasing detection score).

        Raises:
            DataError: an unreadable file, or an input of the wrong type, dtype or shape.
            WeightsError: detection is needed but the MTCNN weights are missing.
        """
        items = _as_item_list(images)
        slots: list[list[FacePrediction]] = [[] for _ in items]
        pending: list[tuple[int, np.ndarray, str]] = []  # images waiting for detection

        def flush() -> None:
            if pending:
                idx, arrays, names = zip(*pending)
                for i, preds in zip(idx, self.predict_arrays(list(arrays), list(names))):
                    slots[i] = preds
                pending.clear()

        for i, item in enumerate(items):
            if isinstance(item, torch.Tensor):
                slots[i] = self._predict_aligned(item, f"input[{i}]")
                continue
            if isinstance(item, (str, os.PathLike)) and is_video_name(item):
                slots[i] = list(self.predict_video(item))
                continue
            name, array = self._load(item, i)
            pending.append((i, array, name))
            if len(pending) >= self.batch_size:
                flush()
        flush()
        return Predictions([p for preds in slots for p in preds], self.classes)

    def iter_video(
        self,
        path: str | os.PathLike,
        every: int = 1,
        track: bool = True,
        detect_every: int = 15,
        tracker: FaceTracker | None = None,
    ) -> Iterator[tuple[int, np.ndarray, list[FacePrediction]]]:
        """Predict faces in every ``every``-th frame of a video.

        Frames are decoded with OpenCV. With ``track`` the full MTCNN runs every
        ``detect_every`` processed frames and O-Net alone follows the faces in
        between (see :mod:`facefactors.inference.tracking`); without it every frame is fully
        detected. Aligned faces of up to ``batch_size`` frames go through the
        classifier together.

        Args:
            path: the video file.
            every: process frames 0, every, 2·every, ...
            track: follow faces with O-Net between key frames.
            detect_every: key-frame period when tracking.
            tracker: use this tracker (e.g. to read its counters afterwards)
                instead of a new one; implies tracking.

        Yields:
            ``(frame_index, rgb_frame, predictions)`` per processed frame, in order.

        Raises:
            DataError: the video cannot be opened or holds no frame.
        """
        if tracker is None and track:
            tracker = self.tracker(detect_every)
        for batch in self.video_batches(VideoFrames(path, every), tracker):
            yield from batch

    def video_batches(
        self, frames: VideoFrames, tracker: FaceTracker | None
    ) -> Iterator[list[tuple[int, np.ndarray, list[FacePrediction]]]]:
        """The work of :meth:`iter_video`, one classifier batch at a time.

        A batch ends where the classifier is called (``batch_size`` frames or
        faces), so after each one the tracker's state belongs to the batch's last
        frame: a run that stops there and restarts at the next frame with that
        state (:meth:`FaceTracker.state`) gives the same predictions.

        Args:
            frames: the video's frames (possibly from a ``start`` frame on).
            tracker: follow faces with it, or ``None`` for a full detection per frame.

        Yields:
            Lists of ``(frame_index, rgb_frame, predictions)``, in frame order.
        """
        source = str(frames.path)
        buffer: list[tuple[int, np.ndarray, list[Face]]] = []

        def drain() -> list[tuple[int, np.ndarray, list[FacePrediction]]]:
            preds = self.classify_faces(
                [b[2] for b in buffer], [source] * len(buffer), [b[0] for b in buffer]
            )
            out = [(index, frame, p) for (index, frame, _faces), p in zip(buffer, preds)]
            buffer.clear()
            return out

        for index, frame in frames:
            if tracker is not None:
                boxes, landmarks = tracker.update(frame)
                faces = self.pipeline.faces_from_landmarks(frame, boxes, landmarks)
            else:
                faces = self.pipeline.process(frame)
            buffer.append((index, frame, faces))
            if len(buffer) >= self.batch_size or sum(len(b[2]) for b in buffer) >= self.batch_size:
                yield drain()
        if buffer:
            yield drain()

    def predict_video(
        self, path: str | os.PathLike, every: int = 1, track: bool = True, detect_every: int = 15
    ) -> Predictions:
        """All faces of a video as :class:`Predictions` (see :meth:`iter_video`)."""
        preds = [p for _i, _f, ps in self.iter_video(path, every, track, detect_every) for p in ps]
        return Predictions(preds, self.classes)

    def _predict_aligned(self, x: torch.Tensor, source: str) -> list[FacePrediction]:
        """Rows of an aligned (B, 3, S, S) or (3, S, S) tensor, one face each."""
        s = self.input_size
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, s, s) or not x.is_floating_point():
            raise DataError(
                f"Aligned {source} must be a float (B, 3, {s}, {s}) tensor for this model, "
                f"got {tuple(x.shape)} {x.dtype}."
            )
        # A 0..255 tensor would be silently saturated into confident nonsense.
        if x.numel() and (x.min() < -1.001 or x.max() > 1.001):
            raise DataError(
                f"Aligned {source} must hold values in [-1, 1] ((x/255 - 0.5)/0.5), "
                f"got {float(x.min()):.3g}..{float(x.max()):.3g}."
            )
        probs = self.probabilities(x.float())
        return [
            FacePrediction.from_probabilities(p, self.classes, source, None, b)
            for b, p in enumerate(probs)
        ]

    @staticmethod
    def _load(item: Any, i: int) -> tuple[str, np.ndarray]:
        """``(source name, RGB array)`` of a path, array or PIL image."""
        if isinstance(item, (str, os.PathLike)):
            from facefactors.data.io import load_image_rgb

            return str(item), load_image_rgb(Path(item))
        if isinstance(item, np.ndarray) or _is_pil(item):
            return f"input[{i}]", _as_rgb_array(item, f"predict() input {i}")
        raise DataError(
            f"predict() input {i} has unsupported type {type(item).__name__}; pass a path, "
            "an RGB uint8 (H, W, 3) array, a PIL image or an aligned (B, 3, S, S) tensor."
        )


def _as_item_list(images: Any) -> list[Any]:
    """One input or a sequence of inputs -> a flat list (a (B, H, W, 3) stack is split)."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images)
    if isinstance(images, (str, os.PathLike, np.ndarray, torch.Tensor)) or _is_pil(images):
        return [images]
    return list(images)
