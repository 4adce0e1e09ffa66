"""Finding.as_dict is written out by hand (for speed): it must still give every field, in the
dataclass's order, as dataclasses.asdict does, so that scan --format json loses nothing."""
from dataclasses import asdict

from dpguard.engine.findings import Finding


def _finding(**changes):
    fields = dict(rule_id="DP-S3TlsOnly", clause=3, severity="error", status="violation", template="t.json",
                  stack="S", logical_id="B", resource_type="AWS::S3::Bucket", construct_path="S/B/Resource",
                  property_path="Properties", message="m", remediation="r")
    fields.update(changes)
    return Finding(**fields)


def test_as_dict_is_asdict_without_an_unset_baseline():
    f = _finding(acknowledgment={"reason": "reviewed by the team", "expires": None})
    expected = asdict(f)
    del expected["baselined"]
    assert list(f.as_dict().items()) == list(expected.items())


def test_as_dict_keeps_baselined_when_a_baseline_was_given():
    f = _finding(baselined=False)
    assert list(f.as_dict().items()) == list(asdict(f).items())


def test_as_dict_copies_the_acknowledgment():
    f = _finding(acknowledgment={"reason": "reviewed by the team", "expires": "2030-01-01"})
    f.as_dict()["acknowledgment"]["reason"] = "changed"
    assert f.acknowledgment["reason"] == "reviewed by the team"
