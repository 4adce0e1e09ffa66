"""AWS KMS keys: rotation and key policies (clause 7)."""
from __future__ import annotations

from typing import Any

from ..engine.checks import public_statements, require_true
from ..engine.findings import unverifiable
from ..engine.values import ABSENT, Unknown, described
from . import rule

SYMMETRIC = "SYMMETRIC_DEFAULT"


NO_AUTOMATIC_ROTATION = {"EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"}


def _enum(value: Any, prop: str) -> Any:
    """An enumerated string property as read; a list, mapping, number or null is Unknown saying
    the type is wrong, so that it never decides that a rule does not apply."""
    if value is ABSENT or isinstance(value, (str, Unknown)):
        return value
    return Unknown(f"{prop} is {described(value)}, not a string")


@rule("DP-KmsKeyRotation", clause=7, severity="error", types=["AWS::KMS::Key"],
      title="Symmetric KMS keys rotate automatically",
      rationale="Clause 7: cryptographic material must stay strong and private to our processes; "
                "yearly automatic rotation limits what one exposed key version can decrypt. "
                "Rotation is off unless EnableKeyRotation is true. Asymmetric and HMAC keys, keys "
                "with imported material (Origin EXTERNAL) and keys in custom key stores "
                "(AWS_CLOUDHSM, EXTERNAL_KEY_STORE: live accounts only) cannot rotate "
                "automatically, so the rule does not apply to them.",
      remediation="kms.Key(self, 'DataKey', enable_key_rotation=True)")
def kms_key_rotation(r, t):
    symmetric, unknown = True, None  # without Origin and KeySpec: a symmetric key, AWS's default
    if "Origin" in r.props or "KeySpec" in r.props:
        if all(isinstance(origin, str) and origin in NO_AUTOMATIC_ROTATION for _, origin in r.values("Origin")):
            return  # imported key material or a custom key store, in every variant
        specs = [_enum(spec, "KeySpec") for _, spec in r.values("KeySpec")]
        symmetric = any(spec is ABSENT or spec == SYMMETRIC for spec in specs)
        unknown = next((spec for spec in specs if isinstance(spec, Unknown)), None)
        if not symmetric and unknown is None:
            return  # asymmetric or HMAC in every variant
    if r.props.get("EnableKeyRotation") is True:
        return  # the usual case, decided without reading the property's variants
    outcomes = list(require_true(r, "EnableKeyRotation", "automatic key rotation is off"))
    if symmetric:
        yield from outcomes
    elif outcomes:
        yield unverifiable("Properties/KeySpec",
                           f"key rotation is off and the key spec cannot be known: {unknown.reason}")


@rule("DP-KmsKeyPolicyNoWildcard", clause=7, severity="error",
      types=["AWS::KMS::Key", "AWS::KMS::ReplicaKey"],
      title="KMS key policies do not allow any principal without a condition",
      rationale="Clause 7: key material is accessible only to our processes and services and is "
                "never shared. An Allow to Principal \"*\" without a scoping condition "
                "(kms:CallerAccount, kms:ViaService, aws:PrincipalOrgID, ...) lets any AWS account "
                "use the key. Delegation to the account root (the default key policy CDK writes) "
                "hands control to IAM policies and is accepted.",
      remediation="Leave the default key policy (account root) and grant use with "
                  "key.grant_encrypt_decrypt(role), or add conditions to the statement.")
def kms_key_policy_no_wildcard(r, t):
    yield from public_statements(r, "KeyPolicy")
