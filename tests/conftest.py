from __future__ import annotations

from pathlib import Path

import pytest

from dpguard.engine.template import App

ROOT = Path(__file__).resolve().parent.parent


def make_app(*templates: dict, trust_parameter_defaults: bool = False) -> App:
    app = App(trust_parameter_defaults=trust_parameter_defaults)
    for index, template in enumerate(templates):
        app.add(f"t{index}.json", template, f"Stack{index}")
    return app


@pytest.fixture
def root() -> Path:
    return ROOT
