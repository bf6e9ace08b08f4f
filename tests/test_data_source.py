"""``data.root`` is never ignored: a prepared folder makes the source ``prepared``, others fail."""

from __future__ import annotations

import pytest

from facefactors.config import load_config
from facefactors.errors import ConfigError
from facefactors.ipd.config import IPDConfig, validate_config


def _cfg(*overrides: str) -> IPDConfig:
    return validate_config(load_config(IPDConfig, "ipd_synth_quick", list(overrides)))


def test_root_with_the_synth_source_is_an_error_naming_both_keys(tmp_path):
    (tmp_path / "happy").mkdir()  # a raw image folder: no loader can be guessed safely
    with pytest.raises(ConfigError, match=r"'data\.root' is .* but 'data\.source' is 'synth'"):
        _cfg(f"data.root={tmp_path}")
    with pytest.raises(ConfigError, match=r"data\.root.*data\.source"):
        _cfg(f"data.root={tmp_path / 'missing'}")


@pytest.mark.parametrize("marker", ["prepared.json", "annotations.csv"])
def test_a_prepared_root_sets_the_source(tmp_path, marker, capsys):
    (tmp_path / marker).write_text("")
    cfg = _cfg(f"data.root={tmp_path}")
    assert cfg.data.source == "prepared"
    assert "data.source set to 'prepared'" in capsys.readouterr().err
    assert _cfg(f"data.root={tmp_path}").data.source == "prepared"  # again, said once
    assert "data.source" not in capsys.readouterr().err
    # An explicit source is kept as given, and no root leaves the synthetic faces.
    assert _cfg(f"data.root={tmp_path}", "data.source=csv").data.source == "csv"
    assert _cfg().data.source == "synth"
