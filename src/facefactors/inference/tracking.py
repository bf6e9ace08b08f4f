"""Follow faces through a video with O-Net alone between full MTCNN detections.

The full cascade spends almost all its time in P-Net over the image pyramid
(~250 ms for a 640x480 frame at a 20 px minimum face on one busy core), while
O-Net on one 48x48 crop takes a few milliseconds. Between consecutive video
frames a face moves a few pixels, well inside what O-Net's box regression was
trained to correct (it refines R-Net boxes that are off by a fraction of their
size). So :class:`FaceTracker` runs the full detector on key frames only and,
in between, feeds each previous face's squared box to O-Net, which returns a
new score, box and landmarks.

What this costs in accuracy: faces that *enter* the picture are found at the
next key frame (at most ``detect_every - 1`` frames late). A face that O-Net
no longer accepts (score below MTCNN's third threshold, e.g. after a cut or a
fast turn) triggers a full detection on that same frame, so a lost face is not
dropped for more than the frame where it is lost.
"""

from __future__ import annotations

import numpy as np
import torch

from facefactors.errors import ConfigError
from facefactors.faces.mtcnn import MTCNN, integer_boxes, square_boxes


@torch.inference_mode()
def refine_with_onet(
    mtcnn: MTCNN, image: np.ndarray, boxes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Re-detect faces near known boxes with O-Net only.

    Args:
        mtcnn: the loaded detector (its O-Net, device, third threshold and
            ``mirror_landmarks`` setting are used).
        image: (H, W, 3) uint8 RGB frame.
        boxes: (N, 4+) previous boxes ``[x1, y1, x2, y2, ...]``.

    Returns:
        ``(boxes, landmarks)`` as :meth:`MTCNN.detect` gives them for one image:
        (M, 5) ``[x1, y1, x2, y2, score]`` by decreasing score and (M, 5, 2), with
        M <= N (faces O-Net rejects are dropped).
    """
    empty = np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
    if len(boxes) == 0:
        return empty
    prev = torch.as_tensor(np.asarray(boxes)[:, :4], dtype=torch.float32, device=mtcnn.device)
    sq = integer_boxes(square_boxes(prev))
    img = torch.zeros(len(sq), dtype=torch.long, device=mtcnn.device)
    _img, new_boxes, prob, landmarks = mtcnn.onet_stage(image[None], img, sq)
    if prob.shape[0] == 0:
        return empty
    rows = torch.cat([new_boxes, prob[:, None]], dim=1)
    return rows.float().cpu().numpy(), landmarks.float().cpu().numpy()


class FaceTracker:
    """Full MTCNN on key frames, O-Net refinement of the previous faces in between.

    Args:
        mtcnn: the loaded detector.
        detect_every: run the full detector on every ``detect_every``-th call
            (1 = every frame, i.e. no tracking).

    Attributes:
        full_detections: how many frames went through the full cascade.
        refinements: how many frames were handled by O-Net alone.
    """

    def __init__(self, mtcnn: MTCNN, detect_every: int = 15) -> None:
        if detect_every < 1:
            raise ConfigError(
                f"Tracking option detect_every must be at least 1, got {detect_every}."
            )
        self.mtcnn = mtcnn
        self.detect_every = int(detect_every)
        self.full_detections = 0
        self.refinements = 0
        self._boxes = np.zeros((0, 5), np.float32)
        self._since_detection = 0

    def state(self) -> dict[str, object]:
        """What the next :meth:`update` depends on, as plain JSON-ready values (float32
        boxes round-trip exactly through Python floats)."""
        return {
            "boxes": self._boxes.tolist(),
            "since_detection": self._since_detection,
            "full_detections": self.full_detections,
            "refinements": self.refinements,
        }

    def restore(self, state: dict[str, object]) -> None:
        """Continue from a :meth:`state` snapshot."""
        boxes = np.asarray(state["boxes"], np.float32)
        self._boxes = boxes.reshape(-1, 5) if boxes.size else np.zeros((0, 5), np.float32)
        self._since_detection = int(state["since_detection"])  # type: ignore[arg-type]
        self.full_detections = int(state["full_detections"])  # type: ignore[arg-type]
        self.refinements = int(state["refinements"])  # type: ignore[arg-type]

    def reset(self) -> None:
        """Forget the faces (call between videos or after a cut)."""
        self._boxes = np.zeros((0, 5), np.float32)
        self._since_detection = 0

    def update(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Faces of the next frame.

        Args:
            frame: (H, W, 3) uint8 RGB.

        Returns:
            ``(boxes (N, 5), landmarks (N, 5, 2))`` as :meth:`MTCNN.detect` gives them.
        """
        key = self._since_detection % self.detect_every == 0
        if not key and len(self._boxes) == 0:
            # Nothing to follow: new faces are looked for on the next key frame.
            self._since_detection += 1
            return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        if not key:
            boxes, landmarks = refine_with_onet(self.mtcnn, frame, self._boxes)
            if len(boxes) == len(self._boxes):
                self.refinements += 1
                self._boxes = boxes
                self._since_detection += 1
                return boxes, landmarks
            # A face was lost (or two tracks merged): this frame gets a full detection.
        boxes, landmarks = self.mtcnn.detect(frame)[0]
        self.full_detections += 1
        self._boxes = boxes
        self._since_detection = 1
        return boxes, landmarks
