"""Workflows (clause 9): Step Functions state machines log their executions."""
from __future__ import annotations

from typing import Any

from ..engine.checks import is_set, leaves, nested_values
from ..engine.findings import unverifiable, violation
from ..engine.values import ABSENT, Unknown, as_text
from . import rule

STATE_MACHINE = "AWS::StepFunctions::StateMachine"

# FATAL records only executions that fail as a whole; the state-level errors (a task denied
# access, a failed integration) that show misuse appear from ERROR up.
STATE_MACHINE_LOG_LEVELS = ("ALL", "ERROR")


def _upper(value: Any) -> str | None:
    text = as_text(value)
    return text.strip().upper() if text is not None else None


def _express_note(r) -> str:
    express = any(_upper(v) == "EXPRESS" for _, v in r.values("StateMachineType"))
    return ("; an EXPRESS state machine keeps no execution history, so these logs are the only "
            "record of its executions") if express else ""


@rule("DP-StepFunctionsLogging", clause=9, severity="error", types=[STATE_MACHINE],
      title="Step Functions state machines log executions to CloudWatch Logs",
      rationale="Clause 9: logs of system activity, to detect and investigate security events. "
                "A state machine logs only with a LoggingConfiguration whose Level is ALL or "
                "ERROR and whose Destinations name a CloudWatch Logs log group; without one "
                "(the default) the Level is OFF. FATAL is not enough: it records only executions "
                "that fail as a whole, not the failed states (a task denied access, a rejected "
                "call) that show misuse. EXPRESS state machines keep no execution history at "
                "all, so for them the logs are the only record. Including execution data is "
                "left to the team: it copies the payloads, personal data among them, into the "
                "logs.",
      remediation="sfn.StateMachine(self, 'Workflow', definition_body=..., logs=sfn.LogOptions("
                  "destination=logs.LogGroup(self, 'WorkflowLogs', encryption_key=key, "
                  "retention=logs.RetentionDays.ONE_YEAR), level=sfn.LogLevel.ERROR))")
def step_functions_logging(r, t):
    note = None
    outcomes: list = []
    for path, level in leaves(r, "LoggingConfiguration.Level"):
        if isinstance(level, Unknown):
            outcomes.append(unverifiable(path, f"the state machine's log level cannot be verified: {level.reason}"))
        elif level is ABSENT or _upper(level) not in STATE_MACHINE_LOG_LEVELS:
            note = _express_note(r) if note is None else note
            shown = "OFF, the default" if level is ABSENT else as_text(level)
            what = ("logs only executions that fail as a whole" if _upper(level) == "FATAL"
                    else "does not log its executions")
            outcomes.append(violation(path, f"the state machine {what} (Level {shown}); set Level ERROR "
                                            f"or ALL with a log group destination{note}"))
    if outcomes:
        yield from outcomes
        return
    for path, destinations in leaves(r, "LoggingConfiguration.Destinations"):
        verdict = _has_log_group(destinations, t)
        if isinstance(verdict, Unknown):
            yield unverifiable(path, f"the state machine's log destination cannot be verified: {verdict.reason}")
        elif not verdict:
            yield violation(path, f"the state machine names a log level but no CloudWatch Logs log group "
                                  f"(Destinations), so nothing is logged{_express_note(r)}")


def _has_log_group(destinations: Any, tpl) -> bool | Unknown:
    """Does one variant of Destinations name a log group (CloudWatchLogsLogGroup.LogGroupArn)?"""
    if isinstance(destinations, Unknown):
        return destinations
    if not isinstance(destinations, list):
        return False if destinations is ABSENT else Unknown("Destinations is not a list")
    doubt: Unknown | None = None
    for item in destinations:
        arns = nested_values(item, tpl, "CloudWatchLogsLogGroup", "LogGroupArn")
        if arns and all(is_set(a) and not isinstance(a, Unknown) for a in arns):
            return True
        doubt = doubt or next((a for a in arns if isinstance(a, Unknown)), None)
    return doubt if doubt is not None else False
