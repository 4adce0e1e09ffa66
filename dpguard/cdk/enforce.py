"""`dpguard.enforce(scope)`: the whole policy for an App or Stage in one call."""
from __future__ import annotations

import datetime as dt
import sys

from .versions import require_supported

# Before anything of aws-cdk-lib or cdk-nag is used (plugin.py subclasses CDK's interfaces at
# import): outside the supported range, one line naming it instead of a jsii error at synth.
require_supported()

import aws_cdk as cdk
import cdk_nag
from constructs import IConstruct

from ..engine import Config
from ..engine.evaluate import MIN_REASON_LENGTH
from ..engine.loader import InputError
from ..rules import catalogue
from .guardrails import default_data_tags
from .plugin import PLUGIN_NAME, DpguardPlugin

CONTEXT_KEY = "dpguard"  # cdk.json: {"context": {"dpguard": {...}}}
PACKS = {
    "AwsSolutions": cdk_nag.AwsSolutionsChecks,
    "NIST80053R5": cdk_nag.NIST80053R5Checks,
    "NIST80053R4": cdk_nag.NIST80053R4Checks,
    "HIPAASecurity": cdk_nag.HIPAASecurityChecks,
    "PCIDSS321": cdk_nag.PCIDSS321Checks,
    "Serverless": cdk_nag.ServerlessChecks,
}
OPTIONS = ("packs", "default_classification", "default_owner") + Config.SETTINGS


class PolicyError(ValueError):
    """A misuse of enforce() or acknowledge(): raised at once, so synth stops with one line."""


def enforce(scope: IConstruct, **options) -> DpguardPlugin:
    """Judge every template of `scope` (an App or a Stage) at synth: dpguard's catalogue, the
    cdk-nag packs, and the construct guardrails. Options override the `dpguard` context of
    cdk.json; the defaults are the strict ones. Returns the registered plugin."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise PolicyError(f"dpguard.enforce: unknown option(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(OPTIONS)}")
    context = scope.node.try_get_context(CONTEXT_KEY) or {}
    if not isinstance(context, dict):
        raise PolicyError(f"cdk.json context '{CONTEXT_KEY}' must be a mapping of dpguard options")
    settings = {**context, **options}
    packs = settings.pop("packs", ["AwsSolutions"])
    classification = settings.pop("default_classification", None)
    owner = settings.pop("default_owner", None)
    if not isinstance(packs, (list, tuple)) or any(
            not isinstance(p, str) or p.removesuffix("Checks") not in PACKS for p in packs):
        raise PolicyError(f"dpguard.enforce: packs must be a list of {', '.join(PACKS)}; "
                          f"got {packs!r}")
    try:
        config = Config.from_settings(settings, "dpguard.enforce options")
        default_data_tags(scope, classification, owner)
    except (InputError, ValueError) as e:
        raise PolicyError(f"dpguard.enforce: {e}") from None

    plugin = DpguardPlugin(config)
    validations = cdk.Validations.of(scope)
    validations.add_plugins(plugin)
    for name in packs:
        validations.add_plugins(PACKS[name.removesuffix("Checks")](scope))
    # Acknowledgments into each resource's template Metadata (cdk-nag's aspect, run in
    # JavaScript), so `dpguard scan cdk.out` later sees what was acknowledged and why.
    cdk.Aspects.of(scope).add(cdk_nag.WriteNagSuppressionsToCloudFormationAspect())
    return plugin


def qualified_rule_id(rule_id: str, path: str) -> str:
    """`DP-X` -> `dpguard::DP-X`, `AwsSolutions-S1` -> `AwsSolutions::AwsSolutions-S1`; ids of
    dpguard's own rules are checked, so a typo fails at once instead of silently not matching."""
    namespace, _, name = rule_id.rpartition("::")
    if not namespace:
        pack = name.split("-", 1)[0]
        namespace = PLUGIN_NAME if pack == "DP" else pack
    if namespace == PLUGIN_NAME and name not in {r.rule_id for r in catalogue()}:
        raise PolicyError(f"acknowledge at {path}: {rule_id} is not a dpguard rule (see `dpguard rules`)")
    return f"{namespace}::{name}"


def acknowledge(scope: IConstruct, rule_id: str, reason: str, *, expires: str | None = None,
                ticket: str | None = None, today: dt.date | None = None) -> None:
    """Acknowledge `rule_id` on `scope` and everything under it, with CDK's own mechanism.

    `rule_id` is what CDK prints under the violation (`dpguard::DP-...`,
    `AwsSolutions::AwsSolutions-S1`, ...); `DP-...` and `AwsSolutions-S1` are short for those. The reason is mandatory. Past `expires`
    (YYYY-MM-DD) the acknowledgment no longer holds and synth fails again; the date and the
    ticket are kept in the reason, where CDK's report and `dpguard scan` both read them."""
    path = scope.node.path or "<app>"
    rule_id = qualified_rule_id(rule_id, path)
    if not isinstance(reason, str) or len(reason.strip()) < MIN_REASON_LENGTH:
        raise PolicyError(f"acknowledge {rule_id} at {path}: give a specific reason "
                          f"(at least {MIN_REASON_LENGTH} characters)")
    text = reason.strip()
    if ticket:
        text += f" (ticket {ticket})"
    if expires is not None:
        try:
            day = dt.date.fromisoformat(str(expires))
        except ValueError:
            raise PolicyError(f"acknowledge {rule_id} at {path}: expires {expires!r} is not a "
                              f"YYYY-MM-DD date") from None
        text += f" (expires {day.isoformat()})"
        if day < (today or dt.date.today()) and not rule_id.startswith(f"{PLUGIN_NAME}::"):
            # Another plugin's violation would be hidden by CDK: do not acknowledge it at all.
            # dpguard's own is recorded, and its plugin reports the violation as fatal, which
            # no acknowledgment hides, with the expiry in the message.
            cdk.Annotations.of(scope).add_warning_v2(
                "dpguard:acknowledgment-expired",
                f"The acknowledgment of {rule_id} expired on {day.isoformat()}: the rule applies again.")
            return
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=text))


def synth(app: cdk.App) -> None:
    """app.synth(), ending a failed policy validation with one line and exit code 1 instead of
    a jsii traceback. CDK has already printed the report (construct path, rule, clause, fix)."""
    try:
        app.synth()
    except RuntimeError as e:
        message = str(e).removeprefix("ValidationFailed: ")
        if not str(e).startswith("ValidationFailed"):
            raise
        if "\n" in message:  # in-memory mode: the report travels in the exception
            print(message, file=sys.stderr)
        print(f"dpguard: synth failed: policy violations above ({message.splitlines()[-1].strip()})",
              file=sys.stderr)
        sys.exit(1)
