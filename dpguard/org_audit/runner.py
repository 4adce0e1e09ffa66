"""Run the organisation audit's state machine here, in this process: the same Amazon States
Language definition that Step Functions runs (dpguard/stacks/org_audit.py), with its Lambda
tasks calling the handlers of dpguard/org_audit/handlers.py directly. The tests run it over several moto
accounts; an operator can dry-run an audit with it before deploying the stack:

    BUCKET=... KEY_ARN=... EXTERNAL_ID=... REGIONS=eu-west-1 \\
        python -m dpguard.org_audit.runner state-machine.json --input '{"date": "2026-12-03"}'

What it runs of the States Language, and nothing else (anything else is refused with the state's
name, never skipped):

* states Task, Map, Pass, Succeed, Fail; InputPath, Parameters, ItemSelector, ResultSelector,
  ResultPath, OutputPath, with JSONPath `$`, `$.a.b`, `$$.Execution.Input...`,
  `$$.Map.Item.Value...`, `$$.Map.Item.Index`;
* Task resources `arn:PARTITION:states:::lambda:invoke` (Parameters.FunctionName and Payload;
  the result is {"Payload": ..., "StatusCode": 200}), a Lambda function ARN or name (the result is
  the function's), and `arn:PARTITION:states:::sns:publish` (TopicArn, Message, Subject);
* Retry (ErrorEquals with error names, States.ALL, States.TaskFailed; IntervalSeconds,
  MaxAttempts, BackoffRate, MaxDelaySeconds; every wait multiplied by `interval_scale`) and Catch;
* Map, inline or DISTRIBUTED: ItemsPath, or an ItemReader `arn:aws:states:::s3:getObject` of a
  JSON array; items run on a thread pool of MaxConcurrency threads (0: 1,000, as Step Functions'
  limit of a distributed map); ToleratedFailurePercentage and ToleratedFailureCount (exceeded:
  the Map fails with States.ExceedToleratedFailureThreshold); ResultWriter
  `arn:aws:states:::s3:putObject` writes the items' results under its Prefix as
  manifest.json, SUCCEEDED_0.json and FAILED_0.json.

A handler's exception is the task's error, named by its class (as Lambda names it: errorType) with
its message as the cause. Every function of a run sees the same environment (os.environ).

The stack's definition (`dpguard.stacks.org_audit.definition_of` of the synthesized template)
names its resources as `${LogicalId}` and `${AWS::Partition}`: `bind` puts in their values (the
bucket's name, the topic's ARN); a function is found by its name in the reference, so
`${AuditAccountFunction40693120.Arn}` calls `audit-account`."""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

# Service integrations by what follows "arn:PARTITION:states:::"
LAMBDA_INVOKE, S3_GET, S3_PUT, SNS_PUBLISH = "lambda:invoke", "s3:getObject", "s3:putObject", "sns:publish"
INTEGRATION = re.compile(r"^arn:[^:]+:states:::([a-z0-9-]+:[A-Za-z0-9.]+)$")
REFERENCE = re.compile(r"\$\{([^}]+)\}")
DISTRIBUTED_LIMIT = 1000
LAMBDA_TIMEOUT = 900  # what the context tells a handler of its remaining time


class StatesError(Exception):
    """An error in the States Language sense: a name (States.TaskFailed, ImportFailed, ...) and a cause."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


class DefinitionError(Exception):
    """The definition uses something this runner does not run, or is malformed."""


@dataclass
class Execution:
    status: str  # SUCCEEDED or FAILED
    output: Any = None
    error: str | None = None
    cause: str | None = None
    events: list[dict] = field(default_factory=list)  # {"type", "state", ...} in the order they happened

    def of_type(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["type"] == kind]


def default_functions() -> dict[str, Callable]:
    from . import handlers

    return {"list-accounts": handlers.list_accounts, "audit-account": handlers.audit_account,
            "report": handlers.report, "access-review": handlers.access_review}


def bind(definition: Any, values: dict[str, str]) -> Any:
    """`definition` with each `${Name}` in its strings replaced by values[Name] (AWS::Partition
    is "aws" unless given); references without a value are left as they are."""
    values = {"AWS::Partition": "aws", **values}
    if isinstance(definition, dict):
        return {k: bind(v, values) for k, v in definition.items()}
    if isinstance(definition, list):
        return [bind(v, values) for v in definition]
    if isinstance(definition, str):
        return REFERENCE.sub(lambda m: values.get(m.group(1), m.group(0)), definition)
    return definition


def _integration(resource: Any) -> str | None:
    match = INTEGRATION.match(resource) if isinstance(resource, str) else None
    return match.group(1) if match else None


def _bound(name: str, field_name: str, value: Any) -> str:
    if not isinstance(value, str) or REFERENCE.search(value):
        raise DefinitionError(f"state {name}: {field_name} is {value!r}; bind its reference to a value first")
    return value


class Runner:
    """One execution of `definition` with `functions` (a name each, matched against the task's
    function name or ARN: see `function`)."""

    def __init__(self, definition: dict, functions: dict[str, Callable] | None = None, *,
                 interval_scale: float = 1.0, s3: Any = None) -> None:
        self.definition = definition
        self.functions = functions if functions is not None else default_functions()
        self.interval_scale = interval_scale
        self._s3 = s3
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self.name = f"local-{uuid.uuid4().hex[:12]}"
        self.input: Any = None

    def run(self, execution_input: Any = None) -> Execution:
        self.input = {} if execution_input is None else execution_input
        try:
            output = self._machine(self.definition, copy.deepcopy(self.input), {})
        except StatesError as e:
            self._event("ExecutionFailed", None, error=e.error, cause=e.cause)
            return Execution("FAILED", error=e.error, cause=e.cause, events=self.events)
        self._event("ExecutionSucceeded", None)
        return Execution("SUCCEEDED", output=output, events=self.events)

    # -------------------------------------------------------------------------- machines and states

    def _machine(self, machine: dict, data: Any, context: dict) -> Any:
        states = machine.get("States") or {}
        name = machine.get("StartAt")
        if machine.get("QueryLanguage", "JSONPath") != "JSONPath":
            raise DefinitionError("only JSONPath definitions run locally (QueryLanguage JSONata does not)")
        while True:
            if name not in states:
                raise DefinitionError(f"no state named {name!r}")
            state = states[name]
            self._event("StateEntered", name)
            data, next_name = self._state(name, state, data, context)
            if next_name is None:
                return data
            name = next_name

    def _state(self, name: str, state: dict, data: Any, context: dict) -> tuple[Any, str | None]:
        kind = state.get("Type")
        if kind == "Succeed":
            return self._output(state, self._input(state, data, context)), None
        if kind == "Fail":
            raise StatesError(state.get("Error", "States.Fail"), state.get("Cause", ""))
        if kind not in ("Task", "Map", "Pass"):
            raise DefinitionError(f"state {name}: type {kind!r} does not run locally")
        effective = self._input(state, data, context, parameters="Parameters" if kind != "Map" else None)
        try:
            if kind == "Pass":
                result = copy.deepcopy(state["Result"]) if "Result" in state else effective
            elif kind == "Task":
                result = self._with_retries(name, state, lambda: self._task(name, state, effective, context))
            else:
                result = self._with_retries(name, state, lambda: self._map(name, state, effective, context))
        except StatesError as e:
            catcher = next((c for c in state.get("Catch", []) if _matches(c.get("ErrorEquals", []), e.error)), None)
            if catcher is None:
                raise
            self._event("Caught", name, error=e.error)
            out = _put_path(data, catcher.get("ResultPath", "$"), {"Error": e.error, "Cause": e.cause})
            return out, catcher["Next"]
        if "ResultSelector" in state:
            result = _resolve(state["ResultSelector"], result, context, self.input)
        out = _put_path(data, state.get("ResultPath", "$"), result)
        out = _select(out, state.get("OutputPath", "$"))
        return out, None if state.get("End") else state.get("Next")

    def _input(self, state: dict, data: Any, context: dict, parameters: str | None = None) -> Any:
        effective = _select(data, state.get("InputPath", "$"))
        if parameters and parameters in state:
            effective = _resolve(state[parameters], effective, context, self.input)
        return effective

    @staticmethod
    def _output(state: dict, data: Any) -> Any:
        return _select(data, state.get("OutputPath", "$"))

    def _with_retries(self, name: str, state: dict, attempt: Callable[[], Any]) -> Any:
        tries: dict[int, int] = {}
        while True:
            try:
                return attempt()
            except StatesError as e:
                index = next((i for i, r in enumerate(state.get("Retry", []))
                              if _matches(r.get("ErrorEquals", []), e.error)), None)
                if index is None:
                    raise
                retrier = state["Retry"][index]
                done = tries.get(index, 0)
                if done >= retrier.get("MaxAttempts", 3):
                    raise
                tries[index] = done + 1
                wait = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** done
                wait = min(wait, retrier.get("MaxDelaySeconds", wait))
                self._event("Retry", name, error=e.error, attempt=done + 1, wait=wait)
                time.sleep(wait * self.interval_scale)

    # -------------------------------------------------------------------------- tasks

    def _task(self, name: str, state: dict, payload: Any, context: dict) -> Any:
        resource = state.get("Resource", "")
        integration = _integration(resource)
        if integration == LAMBDA_INVOKE:
            if not isinstance(payload, dict) or "FunctionName" not in payload:
                raise DefinitionError(f"state {name}: lambda:invoke needs Parameters.FunctionName")
            handler = self.function(str(payload["FunctionName"]))
            return {"Payload": self._call(name, handler, payload.get("Payload", {})), "StatusCode": 200}
        if integration == SNS_PUBLISH:
            return self._publish(name, payload)
        if integration is None and (":lambda:" in resource or ":" not in resource):
            return self._call(name, self.function(resource), payload)
        raise DefinitionError(f"state {name}: resource {resource!r} does not run locally")

    def _publish(self, name: str, payload: Any) -> Any:
        if not isinstance(payload, dict) or "Message" not in payload:
            raise DefinitionError(f"state {name}: sns:publish needs Parameters.TopicArn and Message")
        message = payload["Message"]
        extra = {"Subject": payload["Subject"]} if "Subject" in payload else {}
        self._event("TaskStarted", name)
        answer = self.sns.publish(TopicArn=_bound(name, "TopicArn", payload.get("TopicArn")),
                                  Message=message if isinstance(message, str) else json.dumps(message), **extra)
        self._event("TaskSucceeded", name)
        return {"MessageId": answer["MessageId"]}

    def function(self, identifier: str) -> Callable:
        """The handler whose name is in `identifier` (a function name or ARN, or the logical id
        that a CloudFormation reference to it leaves), ignoring case, '-' and '_'."""
        wanted = _plain(identifier)
        found = [f for n, f in self.functions.items() if _plain(n) in wanted]
        if len(found) != 1:
            raise DefinitionError(f"function {identifier!r} matches {len(found)} of the runner's handlers "
                                  f"({', '.join(self.functions)})")
        return found[0]

    def _call(self, name: str, handler: Callable, payload: Any) -> Any:
        self._event("TaskStarted", name)
        try:
            result = handler(copy.deepcopy(payload), _Context(name))
        except Exception as e:  # noqa: BLE001 - a function's error is the task's error, as in Lambda
            self._event("TaskFailed", name, error=type(e).__name__, cause=str(e))
            raise StatesError(type(e).__name__, str(e)) from None
        self._event("TaskSucceeded", name)
        return json.loads(json.dumps(result))  # what Lambda would return: JSON, not Python objects

    # -------------------------------------------------------------------------- Map

    def _map(self, name: str, state: dict, data: Any, context: dict) -> Any:
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if not processor:
            raise DefinitionError(f"state {name}: a Map needs an ItemProcessor")
        items = self._items(name, state, data, context)
        selector = state.get("ItemSelector", state.get("Parameters"))
        limit = state.get("MaxConcurrency", 0) or DISTRIBUTED_LIMIT
        results: list[Any] = [None] * len(items)
        failures: list[dict] = []
        failed: set[int] = set()

        def one(index: int) -> None:
            item_context = {"Map": {"Item": {"Index": index, "Value": items[index]}}}
            item = _resolve(selector, data, item_context, self.input) if selector else copy.deepcopy(items[index])
            try:
                results[index] = self._machine(processor, item, item_context)
            except StatesError as e:
                with self._lock:
                    failures.append({"Input": item, "Error": e.error, "Cause": e.cause})
                    failed.add(index)
                self._event("MapItemFailed", name, index=index, error=e.error)

        with ThreadPoolExecutor(max_workers=max(1, min(limit, len(items) or 1))) as pool:
            for future in [pool.submit(one, i) for i in range(len(items))]:
                future.result()
        succeeded = [r for i, r in enumerate(results) if i not in failed]
        self._event("MapFinished", name, items=len(items), failed=len(failures))
        if "ResultWriter" in state:
            self._write_results(name, state["ResultWriter"], data, context, succeeded, failures)
        if failures and _over_threshold(state, len(failures), len(items)):
            raise StatesError("States.ExceedToleratedFailureThreshold",
                              f"{len(failures)} of {len(items)} items failed; first: {failures[0]['Error']}: "
                              f"{failures[0]['Cause']}")
        if "ResultWriter" in state:
            return {"ItemsSucceeded": len(succeeded), "ItemsFailed": len(failures)}
        return results

    def _items(self, name: str, state: dict, data: Any, context: dict) -> list:
        reader = state.get("ItemReader")
        if reader is None:
            items = _select(data, state.get("ItemsPath", "$"))
        else:
            if (_integration(reader.get("Resource")) != S3_GET
                    or reader.get("ReaderConfig", {}).get("InputType", "JSON") != "JSON"):
                raise DefinitionError(f"state {name}: only an ItemReader of a JSON file in S3 runs locally")
            where = _resolve(reader.get("Parameters", {}), data, context, self.input)
            body = self.s3.get_object(Bucket=_bound(name, "ItemReader's Bucket", where.get("Bucket")),
                                      Key=where["Key"])["Body"].read()
            items = json.loads(body)
        if not isinstance(items, list):
            raise StatesError("States.ItemReaderFailed" if reader else "States.Runtime",
                              f"state {name}: the items are not a JSON array")
        return items

    def _write_results(self, name: str, writer: dict, data: Any, context: dict, succeeded: list,
                       failures: list[dict]) -> None:
        if _integration(writer.get("Resource")) != S3_PUT:
            raise DefinitionError(f"state {name}: only a ResultWriter to S3 runs locally")
        where = _resolve(writer.get("Parameters", {}), data, context, self.input)
        _bound(name, "ResultWriter's Bucket", where.get("Bucket"))
        prefix = f"{str(where.get('Prefix', '')).rstrip('/')}/{self.name}".lstrip("/")
        files = {"SUCCEEDED_0.json": [{"Output": json.dumps(r)} for r in succeeded],
                 "FAILED_0.json": failures}
        for file, rows in files.items():
            self.s3.put_object(Bucket=where["Bucket"], Key=f"{prefix}/{file}", Body=json.dumps(rows).encode())
        manifest = {"DestinationBucket": where["Bucket"], "MapRunArn": f"local:{self.name}:{name}",
                    "ResultFiles": {"SUCCEEDED": [{"Key": f"{prefix}/SUCCEEDED_0.json"}],
                                    "FAILED": [{"Key": f"{prefix}/FAILED_0.json"}]}}
        self.s3.put_object(Bucket=where["Bucket"], Key=f"{prefix}/manifest.json", Body=json.dumps(manifest).encode())

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3")
        return self._s3

    @property
    def sns(self) -> Any:
        import boto3

        return boto3.client("sns")

    def _event(self, kind: str, state: str | None, **details: Any) -> None:
        with self._lock:
            self.events.append({"type": kind, "state": state, **details})


class _Context:
    """The part of Lambda's context object the handlers read."""

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.aws_request_id = uuid.uuid4().hex
        self._end = time.monotonic() + LAMBDA_TIMEOUT

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._end - time.monotonic()) * 1000))


# ------------------------------------------------------------------------------ JSONPath, the subset ASL uses here

def _select(data: Any, path: str | None) -> Any:
    if path is None:
        return {}
    return _path(data, path, "$")


def _path(data: Any, path: str, root: str) -> Any:
    if path == root:
        return data
    if not path.startswith(root + "."):
        raise DefinitionError(f"JSONPath {path!r} is not of the form {root}.a.b")
    value = data
    for part in path[len(root) + 1:].split("."):
        if not isinstance(value, dict) or part not in value:
            raise StatesError("States.Runtime", f"JSONPath {path!r} matches nothing in the input")
        value = value[part]
    return value


def _resolve(template: Any, data: Any, context: dict, execution_input: Any) -> Any:
    """Parameters, ItemSelector, ResultSelector: keys ending in .$ take the value at their path."""
    if isinstance(template, list):
        return [_resolve(v, data, context, execution_input) for v in template]
    if not isinstance(template, dict):
        return copy.deepcopy(template)
    out = {}
    for key, value in template.items():
        if key.endswith(".$"):
            out[key[:-2]] = _reference(value, data, context, execution_input)
        else:
            out[key] = _resolve(value, data, context, execution_input)
    return out


def _reference(path: Any, data: Any, context: dict, execution_input: Any) -> Any:
    if not isinstance(path, str):
        raise DefinitionError(f"a .$ field holds {path!r}, not a path")
    if path.startswith("$$"):
        whole = {**context, "Execution": {"Input": execution_input}}
        return copy.deepcopy(_path(whole, path, "$$"))
    if path.startswith("States."):
        raise DefinitionError(f"intrinsic function {path.split('(')[0]} does not run locally")
    return copy.deepcopy(_path(data, path, "$"))


def _put_path(data: Any, path: str | None, value: Any) -> Any:
    if path is None:
        return data
    if path == "$":
        return value
    if not path.startswith("$."):
        raise DefinitionError(f"ResultPath {path!r} is not of the form $.a.b")
    out = copy.deepcopy(data) if isinstance(data, dict) else {}
    node = out
    parts = path[2:].split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _matches(names: list[str], error: str) -> bool:
    if "States.ALL" in names or error in names:
        return True
    # every error a task raises, except a timeout, is also States.TaskFailed
    return "States.TaskFailed" in names and not error.startswith("States.")


def _over_threshold(state: dict, failed: int, total: int) -> bool:
    if "ToleratedFailureCount" in state and failed > state["ToleratedFailureCount"]:
        return True
    percent = state.get("ToleratedFailurePercentage")
    if percent is None:
        return "ToleratedFailureCount" not in state  # no threshold: any failure fails the Map
    return failed * 100 > percent * total


def _plain(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


# ------------------------------------------------------------------------------ the command

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dpguard.org_audit.runner",
                                     description="Run the organisation audit's state machine locally, "
                                                 "calling dpguard's handlers in this process.")
    parser.add_argument("definition", help="the state machine's definition (Amazon States Language JSON; of the "
                                           "stack: dpguard.stacks.org_audit.definition_of(its template))")
    parser.add_argument("--bind", action="append", default=[], metavar="NAME=VALUE",
                        help="the value of a ${NAME} reference of the definition, e.g. the results bucket's "
                             "logical id and its name (repeatable)")
    parser.add_argument("--input", default="{}", help="the execution's input, JSON (default {})")
    args = parser.parse_args(argv)
    try:
        with open(args.definition, encoding="utf-8") as f:
            definition = json.load(f)
        execution_input = json.loads(args.input)
        values = dict(b.split("=", 1) for b in args.bind)
    except (OSError, ValueError) as e:
        print(f"dpguard org-audit runner: cannot read the definition, the input or a --bind: {e}", file=sys.stderr)
        return 2
    try:
        execution = Runner(bind(definition, values)).run(execution_input)
    except DefinitionError as e:
        print(f"dpguard org-audit runner: {e}", file=sys.stderr)
        return 2
    if execution.status != "SUCCEEDED":
        print(f"dpguard org-audit runner: the execution failed: {execution.error}: {execution.cause}", file=sys.stderr)
        return 1
    print(json.dumps(execution.output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
