"""Every shipped config validates, and names a registered model with valid options."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from opplan.config import load_config
from opplan.models import get_model_entry

CONFIGS = sorted((Path(__file__).parents[2] / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_is_valid(path):
    config = load_config(path)
    graph = config.graph.build()
    assert graph.finals
    if config.trainer.kind == "video":
        model = config.trainer.model
        entry = get_model_entry(model.name)
        inspect.signature(entry.factory).bind(num_classes=10, **model.options)


def test_paper_settings_follow_table2():
    k400 = load_config(Path(__file__).parents[2] / "configs/paper/kinetics400.yaml")
    assert k400.graph.clip_lengths == [16, 32, 128]
    assert k400.graph.learning_rates == [0.04, 0.004, 0.0004]
    assert k400.trainer.model.options == {"drop_rate": 0.5}
    ss = load_config(Path(__file__).parents[2] / "configs/paper/ss-v2.yaml")
    assert ss.trainer.data.flip is False and ss.graph.clip_lengths == [16, 32]
