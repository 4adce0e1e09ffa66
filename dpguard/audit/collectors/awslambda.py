"""Lambda functions: where they log, their environment, key, role, network and dead-letter queue.

Shape, as CloudFormation writes it: `AWS::Lambda::Function` {FunctionName, Description, Runtime,
Handler, PackageType, Architectures, MemorySize, Timeout, Role, KmsKeyArn, Layers [arn],
Environment {Variables {name: value}}, LoggingConfig {LogFormat, ApplicationLogLevel,
SystemLogLevel, LogGroup}, DeadLetterConfig {TargetArn}, VpcConfig {SubnetIds, SecurityGroupIds,
Ipv6AllowedForDualStack}, TracingConfig {Mode}}. No Tags: no rule reads a function's tags, and
they cost a call per function.

ListFunctions (50 a page) answers with every one of these, so no call is made per function
(GetFunctionConfiguration adds only state and update status). Only `$LATEST` is read: published
versions are snapshots of it, as AWS::Lambda::Version is of the function in a template.

* LoggingConfig: Lambda reports the group a function logs to even when nobody chose it, as
  /aws/lambda/<name>. A template that leaves LogGroup out means that same group, so the default is
  written as absent, and DP-LambdaLogGroup then looks for the account's log group of that name
  (read by the logs collector); a group chosen by name is written as the template would name it.
* Environment values are not copied. ListFunctions returns them in plain text, and they may be
  credentials: each value becomes a placeholder that keeps only what DP-NoSecretsInEnvironment
  reads of it (empty, a boolean, a number or an ARN is kept as it is; any other value is
  "redacted", marked when it holds an AWS access key id). Variable names are kept. When Lambda
  cannot decrypt the environment (its KMS key is disabled or denied), the variables are unreadable.
"""
from __future__ import annotations

from ...rules.secrets import AWS_ACCESS_KEY_ID, is_inert_literal
from ..clients import Clients, Unreadable, listing
from ..live import LiveTemplate, unreadable
from . import collector

DEFAULT_LOG_GROUP = "/aws/lambda/{}"
REDACTED = "(redacted by dpguard audit)"
REDACTED_KEY_ID = "(redacted by dpguard audit: an AWS access key id {}XXXXXXXXXXXXXXXX)"


@collector("lambda")
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    lam = clients("lambda", region)
    functions = listing(lam, "list_functions", "Functions")
    if isinstance(functions, Unreadable):
        live.gap(f"Lambda functions in {region} could not be listed: {functions.reason}")
        return
    for fn in functions:
        name = fn["FunctionName"]
        vpc = fn.get("VpcConfig") or {}
        props = {
            "FunctionName": name, "Description": fn.get("Description"), "Runtime": fn.get("Runtime"),
            "Handler": fn.get("Handler"), "PackageType": fn.get("PackageType"),
            "Architectures": fn.get("Architectures"), "MemorySize": fn.get("MemorySize"),
            "Timeout": fn.get("Timeout"), "Role": fn.get("Role"), "KmsKeyArn": fn.get("KMSKeyArn"),
            "Layers": [layer["Arn"] for layer in fn.get("Layers") or [] if layer.get("Arn")],
            "Environment": _environment(fn.get("Environment")),
            "LoggingConfig": _logging(fn.get("LoggingConfig"), name),
            "DeadLetterConfig": _compact({"TargetArn": (fn.get("DeadLetterConfig") or {}).get("TargetArn")}),
            "VpcConfig": _compact({"SubnetIds": vpc.get("SubnetIds"), "SecurityGroupIds": vpc.get("SecurityGroupIds"),
                                   "Ipv6AllowedForDualStack": vpc.get("Ipv6AllowedForDualStack")})
            if vpc.get("SubnetIds") else None,
            "TracingConfig": _compact({"Mode": (fn.get("TracingConfig") or {}).get("Mode")}),
        }
        live.add(name, "AWS::Lambda::Function", _compact(props), arn=fn["FunctionArn"])


def _environment(environment: dict | None) -> dict | None:
    if not environment:
        return None
    variables = environment.get("Variables")
    error = environment.get("Error") or {}
    if variables is None and error:
        return {"Variables": unreadable(f"Lambda could not decrypt the function's environment: "
                                        f"{error.get('ErrorCode', 'Error')}: {error.get('Message') or 'no message'}")}
    if not variables:
        return None
    return {"Variables": {key: redacted(value) for key, value in variables.items()}}


def redacted(value: str) -> str:
    """A placeholder for an environment value, which says of it only what
    DP-NoSecretsInEnvironment reads: inert values (empty, boolean, number, ARN) stay as they are;
    every other value is redacted, keeping the fact (not the digits) of an AWS access key id."""
    if not isinstance(value, str) or is_inert_literal(value):
        return value
    key = AWS_ACCESS_KEY_ID.search(value)
    return REDACTED_KEY_ID.format(key.group(1)) if key else REDACTED


def _logging(config: dict | None, name: str) -> dict | None:
    if not config:
        return None
    group = config.get("LogGroup")
    return _compact({"LogFormat": config.get("LogFormat"), "ApplicationLogLevel": config.get("ApplicationLogLevel"),
                     "SystemLogLevel": config.get("SystemLogLevel"),
                     "LogGroup": None if group == DEFAULT_LOG_GROUP.format(name) else group}) or None


def _compact(props: dict) -> dict | None:
    out = {k: v for k, v in props.items() if v is not None and v != [] and v != "" and v != {}}
    return out or None
