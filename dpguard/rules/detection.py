"""Detection in templates (clause 4, and clause 2 for sign-ins): GuardDuty detectors are on, and
Cognito user pools detect compromised credentials and risky sign-ins. What the live account has
is judged by DP-GuardDutyEnabled in live.py."""
from __future__ import annotations

from ..engine.checks import require, require_true
from . import rule


@rule("DP-GuardDutyDetectorOn", clause=4, severity="error", types=["AWS::GuardDuty::Detector"],
      title="GuardDuty detectors in templates are enabled",
      rationale="Clause 4: tooling is in place to detect security incidents. A detector created with "
                "Enable false exists but is suspended: it produces no findings, so nothing reaches "
                "the alerts topic, while the account looks covered.",
      remediation="guardduty.CfnDetector(self, 'GuardDuty', enable=True, "
                  "finding_publishing_frequency='FIFTEEN_MINUTES')")
def guardduty_detector_on(r, t):
    yield from require_true(r, "Enable", "the detector is suspended (Enable is not true): it reports no findings")


@rule("DP-CognitoThreatProtection", clause=2, severity="error", types=["AWS::Cognito::UserPool"],
      title="Cognito user pools block compromised credentials and risky sign-ins",
      rationale="Clause 2: only the people the accounts belong to may use them. Threat protection "
                "(UserPoolAddOns.AdvancedSecurityMode ENFORCED, on the Plus feature plan) blocks "
                "sign-ins with credentials known to be leaked and asks risky sign-ins for a second "
                "factor; AUDIT only records them and OFF, the default, does neither.",
      remediation="cognito.UserPool(self, 'Users', feature_plan=cognito.FeaturePlan.PLUS,\n"
                  "    standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION)")
def cognito_threat_protection(r, t):
    yield from require(r, "UserPoolAddOns.AdvancedSecurityMode", lambda v: v == "ENFORCED",
                       "threat protection is not ENFORCED (the default is OFF): leaked credentials and "
                       "risky sign-ins are not blocked")
