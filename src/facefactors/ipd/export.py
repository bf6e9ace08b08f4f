"""The inference path of IPD-FER: E_exp + C_exp only (paper §3.2, §4.3).

:func:`inference_state` turns a trained model into the small export dict that
:class:`facefactors.export.classifier.ExpressionClassifier` rebuilds.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from facefactors.config import to_dict
from facefactors.export.classifier import FORMAT, NORMALIZATION
from facefactors.ipd.config import IPDConfig
from facefactors.ipd.model import IPDModel


def inference_state(model: IPDModel, cfg: IPDConfig | None = None) -> dict[str, Any]:
    """E_exp + C_exp weights, class names and the config, as a checkpoint dict.

    Args:
        model: a trained model of any variant.
        cfg: the full run config to store (default: the model section only).
    """
    mc = model.config
    return {
        "format": FORMAT,
        "classes": list(model.classes),
        "backbone": {
            "name": mc.backbone,
            "width": mc.width,
            "embedding_dim": model.feature_dim,
            "input_size": model.input_size,
        },
        "normalization": dict(NORMALIZATION),
        "e_exp": {k: v.detach().cpu() for k, v in model.e_exp.state_dict().items()},
        "c_exp": {k: v.detach().cpu() for k, v in model.c_exp.state_dict().items()},
        "config": to_dict(cfg) if cfg is not None else {"model": asdict(mc)},
    }
