from __future__ import annotations

from pathlib import Path

import boto3
import moto
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


@pytest.fixture
def session(monkeypatch):
    """A boto3 session on moto's in-process AWS (AWS managed IAM policies loaded), in us-east-1."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with moto.mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        yield boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
