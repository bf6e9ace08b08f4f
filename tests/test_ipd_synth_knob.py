"""The synthetic difficulty knob `data.synth_intensity` reaches the generator and is validated;
so is the held-out validation split `data.synth_val_identities`."""

from __future__ import annotations

import pytest

from facefactors.config import load_config
from facefactors.errors import ConfigError
from facefactors.ipd.config import IPDConfig, validate_config
from facefactors.ipd.data import build_datasets


def test_intensity_reaches_the_generator():
    cfg = load_config(
        IPDConfig,
        "ipd_synth_quick",
        ["data.size=32", "data.synth_identities=3", "data.synth_per_identity=7",
         "data.synth_val_identities=1", "data.synth_intensity=[0.2,0.3]"],
    )  # fmt: skip
    bundle = build_datasets(validate_config(cfg).data, None)
    assert bundle.preview.base.config.expression_intensity == (0.2, 0.3)
    assert len(bundle.train) == 14 and len(bundle.val) == 7


@pytest.mark.parametrize("bad", ["[0.8,0.6]", "[-0.1,0.5]", "[0.5]"])
def test_bad_intensity_is_named(bad):
    cfg = load_config(IPDConfig, "ipd_synth_quick", [f"data.synth_intensity={bad}"])
    with pytest.raises(ConfigError, match="data.synth_intensity"):
        validate_config(cfg)


def test_synthetic_validation_needs_held_out_identities():
    # With none held out, validation would run on training images.
    cfg = load_config(IPDConfig, "ipd_synth_quick", ["data.synth_val_identities=0"])
    with pytest.raises(ConfigError, match=r"'data\.synth_val_identities'.*held-out identities"):
        validate_config(cfg)
    cfg.data.source = "rafdb"  # real data: the synthetic keys are not used
    validate_config(cfg)
