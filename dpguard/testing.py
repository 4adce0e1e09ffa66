"""Helpers for app teams' pytest suites.

    from dpguard.testing import assert_compliant

    def test_orders_stack_is_compliant():
        app = cdk.App()
        stack = OrdersStack(app, "Orders")
        assert_compliant(stack)

assert_compliant synthesizes the app once, judges the scope's templates (nested stacks
included) with dpguard's catalogue, adds what the cdk-nag packs registered by enforce() found
there, and fails with one readable line per problem: rule, clause, construct path, property,
message and fix."""
from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from constructs import IConstruct

from .engine import Config, evaluate
from .engine.findings import Finding
from .engine.loader import load, load_stack_templates
from .rules import catalogue


def policy_findings(scope: IConstruct, **settings) -> list[Finding]:
    """dpguard's failing findings (violations and unverifiable values) for `scope`: a Stack
    (with its nested stacks), a Stage or an App. `settings` are Config settings
    (unverifiable, allowed_ingress, disabled_rules, trust_parameter_defaults)."""
    return _policy_findings(*_synthesize(scope), settings)


def _policy_findings(stage: cdk.Stage, stack: cdk.Stack | None, settings: dict) -> list[Finding]:
    config = Config.from_settings(settings, "dpguard.testing settings")
    if stack is not None:
        app = load_stack_templates([str(Path(stage.outdir) / stack.template_file)],
                                   trust_parameter_defaults=config.trust_parameter_defaults)
    else:
        app, errors = load([stage.outdir], trust_parameter_defaults=config.trust_parameter_defaults)
        if errors:
            raise AssertionError(f"cannot read the synthesized assembly: {errors[0]}")
    return evaluate(app, config, catalogue()).failing()


def other_plugin_violations(scope: IConstruct) -> list[str]:
    """Unacknowledged violations that other validation plugins (the cdk-nag packs enforce()
    registers) reported under `scope`, from CDK's validation-report.json, as readable lines."""
    return _other_plugin_violations(scope, _synthesize(scope)[0])


def _other_plugin_violations(scope: IConstruct, stage: cdk.Stage) -> list[str]:
    root = cdk.App.of(scope) or stage
    report_file = Path(root.outdir) / "validation-report.json"
    if not report_file.is_file():
        return []
    prefix = scope.node.path
    lines = []
    for plugin in json.loads(report_file.read_text(encoding="utf-8")).get("pluginReports", []):
        if plugin.get("pluginName") == "dpguard":
            continue
        for v in plugin.get("violations", []):
            for c in v.get("violatingConstructs", []):
                path = c.get("constructPath") or ""
                if not prefix or path == prefix or path.startswith(prefix + "/"):
                    lines.append(f"{v.get('ruleName')} ({plugin.get('pluginName')}) at {path}: "
                                 f"{v.get('description')}")
    return lines


def assert_compliant(scope: IConstruct, **settings) -> None:
    """Fail with readable findings unless `scope` is compliant with the policy (and with the
    cdk-nag packs enforce() registered, if any)."""
    stage, stack = _synthesize(scope)
    problems = ([describe(f) for f in _policy_findings(stage, stack, settings)]
                + _other_plugin_violations(scope, stage))
    if problems:
        raise AssertionError(f"{len(problems)} policy problem(s) in {scope.node.path or 'the app'}:\n"
                             + "\n".join(f"  - {p}" for p in problems))


def describe(f: Finding) -> str:
    where = f.construct_path or f"{f.stack}/{f.logical_id}"
    prop = f" [{f.property_path}]" if f.property_path else ""
    kind = "" if f.status == "violation" else f" ({f.status})"
    return f"{f.rule_id} (clause {f.clause}){kind} at {where}{prop}: {f.message}. Fix: {f.remediation}"


def _synthesize(scope: IConstruct) -> tuple[cdk.Stage, cdk.Stack | None]:
    """Synthesize the whole app once (later calls reuse it) and return the stage holding
    `scope`'s templates, and the stack when `scope` is one. Validation failures of plugins
    registered by enforce() do not stop us: the assembly is written before CDK validates it."""
    stack = scope if cdk.Stack.is_stack(scope) else None
    if stack is not None and stack.nested_stack_parent is not None:
        raise ValueError("assert_compliant: pass the parent stack; its nested stacks are judged with it")
    stage = cdk.Stage.of(stack) if stack is not None else scope
    root = cdk.App.of(scope) or stage
    try:
        root.synth()
    except RuntimeError as e:
        if "ValidationFailed" not in str(e):
            raise
    return stage, stack
