"""Helpers of tests/test_deploy.py: a real `cdk bootstrap` + `cdk deploy` of the baseline app
against moto's server on loopback, and what it takes to get there.

* `MotoServer` starts moto's server (`moto_server`) on a free loopback port, waits until it
  answers and always stops it. `fix_moto` first fixes, in that server, four moto 5.2.5 bugs
  that made the deploy fail (each makes moto do what AWS does; see its docstring).
* `cli_env` is a clean environment for the CDK CLI: dummy credentials, the moto endpoint,
  no real AWS configuration, no version check, notices or telemetry (nothing leaves loopback).
* `run_cdk` runs the real CLI (node_modules/.bin/cdk), streams its output to a log file and
  hands every line to a callback while it runs; on a timeout it ends the CLI's process group.
* `CustomResourceProvider` plays the AWS Lambda runtime for CDK's `Custom::VpcRestrictDefaultSG`
  provider, whose Lambda moto cannot start (moto runs Lambda code only in Docker): see its
  docstring for what it does and why that is honest.
* `read_stacks` and `Resolver` read back what the deploy made, discovered through the stacks'
  resources rather than by name.

By hand (README, "Try it without an AWS account"):
    python tests/deploy_support.py moto-server [-p PORT]      # moto_server, bugs fixed
    python tests/deploy_support.py custom-resources STACK...  # answer the default-SG resource
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
CDK = ROOT / "node_modules" / ".bin" / "cdk"


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


# Plain HTTP to loopback, whatever proxy the caller's environment names.
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- moto -------------------------------------------------------------------------------------

def fix_moto() -> None:
    """The moto 5.2.5 bugs the baseline meets, fixed in the server process. Each fix makes moto
    do what AWS does with the same template; none makes up a result.

    * AWS::KMS::Key, Tags: CloudFormation tags are `{Key, Value}` pairs and AWS tags the key
      with them; moto hands them unchanged to KMS's tagger, which expects KMS's
      `{TagKey, TagValue}` and fails with KeyError('TagKey'), so any tagged key
      (cdk.Tags.of(app) tags every key) fails its stack with "Fn::GetAtt references undefined
      resource". Translated here.
    * AWS::KMS::Key, KeyPolicy: a JSON object in the template, a JSON string in KMS; moto keeps
      the object, and every later KMS call that checks the key policy (DescribeKey,
      GetKeyRotationStatus, ...) fails with a 500 (json.loads of a dict). Serialized here.
    * AWS::RDS::DBInstance: `DBParameterGroupName: {"Ref": <an AWS::RDS::DBParameterGroup>}`
      is the group's name in AWS; moto's Ref gives the group object (the model has no physical
      resource id) and creating the instance fails with AttributeError ('startswith'). The
      object is replaced by its name here, as moto already does for DBSubnetGroupName.
    * AWS::IAM::Role `Policies`, AWS::IAM::User `Policies` and AWS::IAM::Policy: inline policy
      documents are JSON objects in templates and JSON strings in IAM; moto keeps the objects, and
      GetAccountAuthorizationDetails (what `dpguard audit` reads IAM with) then fails with a 500
      (urllib.parse.quote of a dict). Serialized here."""
    from moto.iam.models import InlinePolicy, Role, User
    from moto.kms.models import Key
    from moto.rds.models import DBInstance, DBParameterGroup

    def kms_key(properties: dict) -> dict:
        if isinstance(properties.get("KeyPolicy"), dict):
            properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
        if properties.get("Tags"):
            properties["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t
                                  for t in properties["Tags"]]
        return properties

    def parameter_group_name(properties: dict) -> dict:
        group = properties.get("DBParameterGroupName")
        if isinstance(group, DBParameterGroup):
            properties["DBParameterGroupName"] = group.name
        return properties

    def inline_policies(properties: dict) -> dict:
        if isinstance(properties.get("PolicyDocument"), dict):
            properties["PolicyDocument"] = json.dumps(properties["PolicyDocument"])
        if isinstance(properties.get("Policies"), list):
            properties["Policies"] = [
                {**p, "PolicyDocument": json.dumps(p["PolicyDocument"])}
                if isinstance(p, dict) and isinstance(p.get("PolicyDocument"), dict) else p
                for p in properties["Policies"]]
        return properties

    for model, fix in ((Key, kms_key), (DBInstance, parameter_group_name), (Role, inline_policies),
                       (User, inline_policies), (InlinePolicy, inline_policies)):
        original = model.create_from_cloudformation_json.__func__
        if getattr(original, "_dpguard_fix", None):
            continue

        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                            _original=original, _fix=fix, **kwargs):
            properties = _fix(dict(cloudformation_json.get("Properties") or {}))
            cloudformation_json = {**cloudformation_json, "Properties": properties}
            return _original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

        create_from_cloudformation_json._dpguard_fix = fix.__name__
        model.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)

    asymmetric_keys_from_templates()


def asymmetric_keys_from_templates() -> None:
    """moto 5.2.5 makes every AWS::KMS::Key of a template a symmetric ENCRYPT_DECRYPT key, whatever
    its KeySpec and KeyUsage say, so the response stack's signing key (ECC_NIST_P256,
    SIGN_VERIFY) could not sign. A key whose template asks for another spec or usage is created
    here with them, through moto's own KMS backend, after the fixes above."""
    from moto.kms.models import Key, kms_backends

    original = Key.create_from_cloudformation_json.__func__
    if getattr(original, "_dpguard_asymmetric", False):
        return

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json.get("Properties") or {}
        usage, spec = properties.get("KeyUsage", "ENCRYPT_DECRYPT"), properties.get("KeySpec", "SYMMETRIC_DEFAULT")
        if (usage, spec) == ("ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT"):
            return original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        policy = properties["KeyPolicy"]
        key = kms_backends[account_id][region_name].create_key(
            policy=policy if isinstance(policy, str) else json.dumps(policy), key_usage=usage, key_spec=spec,
            description=properties.get("Description"),
            tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in properties.get("Tags", [])])
        key.enabled = properties.get("Enabled", True)
        return key

    create_from_cloudformation_json._dpguard_asymmetric = True
    Key.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def add_user_pools_to_moto_cloudformation() -> None:
    """moto 5.2.5 has Cognito user pools but no CloudFormation model of AWS::Cognito::UserPool:
    its CloudFormation skips the pool, so no output or export names it, and a stack importing the
    pool id (the response stack's deletion function) cannot deploy. This model creates the pool
    through moto's own Cognito backend, with the properties that decide how users are named;
    the rest of the pool's settings are checked in the template (test_identity)."""
    from moto.cloudformation import parsing
    from moto.cognitoidp.models import cognitoidp_backends
    from moto.core.common_models import CloudFormationModel

    if "AWS::Cognito::UserPool" in parsing.get_model_map():
        return

    class UserPoolFromTemplate(CloudFormationModel):
        __module__ = "moto.cognitoidp.models"  # moto's model registry files models by service

        def __init__(self, pool) -> None:
            self.pool = pool

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Cognito::UserPool"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "UserPoolName"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("Arn", "ProviderName", "UserPoolId")

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                            **kwargs):
            properties = cloudformation_json.get("Properties") or {}
            config = {k: properties[k] for k in ("UsernameAttributes", "AliasAttributes", "Schema") if k in properties}
            pool = cognitoidp_backends[account_id][region_name].create_user_pool(
                properties.get("UserPoolName") or resource_name, config)
            return cls(pool)

        @property
        def physical_resource_id(self) -> str:
            return self.pool.id

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return {"Arn": self.pool.arn, "UserPoolId": self.pool.id,
                    "ProviderName": f"cognito-idp.{self.pool.region}.amazonaws.com/{self.pool.id}"}[attribute_name]

    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


class MotoServer:
    """moto's server (`moto.server.main`, what `moto_server` runs, with `fix_moto()` applied) on
    127.0.0.1:PORT, addressed as http://localhost:PORT (moto resolves the S3 URLs of templates
    by that name). Use as a context manager: the server is stopped on exit, whatever happened
    inside."""

    def __init__(self, log_path: Path, *, python: str | None = None, startup_timeout: float = 60) -> None:
        self.python = python or sys.executable
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.port = 0
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def endpoint(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> "MotoServer":
        # A port taken between free_port() and the bind makes moto exit at once: try again.
        for _attempt in range(3):
            self.port = free_port()
            self._log = open(self.log_path, "ab")
            self.process = subprocess.Popen(
                [self.python, str(Path(__file__).resolve()), "moto-server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=_moto_env(), start_new_session=True)
            if self._wait_until_up():
                return self
            self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.endpoint}:\n{tail(self.log_text())}")

    def _wait_until_up(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with _LOOPBACK.open(f"{self.endpoint}/moto-api/reset", data=b"", timeout=2) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _base_env() -> dict[str, str]:
    """What every child process gets: the venv first on PATH (Node 24 and python come from it),
    and nothing else from the caller's environment that could reach real AWS."""
    path = os.pathsep.join([str(VENV_BIN), "/usr/local/bin", "/usr/bin", "/bin"])
    env = {"PATH": path, "LANG": os.environ.get("LANG", "C.UTF-8")}
    for name in ("TMPDIR", "SYSTEMROOT"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _moto_env() -> dict[str, str]:
    return {**_base_env(), "HOME": os.environ.get("HOME", "/tmp"), "PYTHONUNBUFFERED": "1"}


def aws_env(endpoint: str, home: Path) -> dict[str, str]:
    """Dummy credentials and the moto endpoint, no shared config or credentials files, no
    instance metadata lookups."""
    return {
        "HOME": str(home),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def cli_env(endpoint: str, home: Path) -> dict[str, str]:
    """A clean environment for the CDK CLI and the app it runs."""
    return {
        **_base_env(),
        **aws_env(endpoint, home),
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "CI": "true",
        "FORCE_COLOR": "0",
        "NO_COLOR": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def boto3_client_factory(endpoint: str) -> Callable[[str], Any]:
    """`clients("s3")` etc.: boto3 clients of one private session, all bound to `endpoint`."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    aws_session_token="testing", region_name=REGION)
    # proxies={}: loopback is never reached through a proxy of the caller's environment.
    config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=10, read_timeout=60,
                    proxies={})
    cache: dict[str, Any] = {}

    def client(name: str) -> Any:
        if name not in cache:
            cache[name] = session.client(name, endpoint_url=endpoint, config=config)
        return cache[name]

    return client


@dataclass
class CliResult:
    command: list[str]
    returncode: int | None  # None: ended by us (timeout or a failed emulation)
    output: str
    seconds: float
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.problem

    def explain(self, lines: int = 80) -> str:
        head = f"`{' '.join(self.command[:3])} ...` "
        head += (f"exited {self.returncode}" if self.returncode is not None else "was stopped")
        head += f" after {self.seconds:.0f}s"
        if self.problem:
            head += f": {self.problem}"
        return f"{head}\n--- last {lines} lines of its output ---\n{tail(self.output, lines)}"


def run_cdk(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float, log_path: Path,
            on_line: Callable[[str], str | None] | None = None,
            watch: Callable[[], str | None] | None = None) -> CliResult:
    """Run `cdk ARGS` in its own process group. Each output line goes to `log_path` and to
    `on_line`, and `watch` is called a few times a second; either may return a problem (a
    string) to stop the CLI at once. Never raises for the CLI's own failures: the result says
    what happened."""
    command = [str(CDK), *args]
    lines: list[str] = []
    started = time.monotonic()
    problem = ""
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   errors="replace", bufsize=1, start_new_session=True)
        queue: list[str] = []
        lock = threading.Lock()

        def read() -> None:
            for line in process.stdout:
                with lock:
                    queue.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            while True:
                with lock:
                    batch, queue[:] = queue[:], []
                for line in batch:
                    lines.append(line)
                    log.write(line)
                    if on_line is not None and not problem:
                        problem = on_line(line.rstrip("\n")) or ""
                log.flush()
                if not problem and watch is not None:
                    problem = watch() or ""
                if problem:
                    break
                if process.poll() is not None and not reader.is_alive():
                    break
                if time.monotonic() - started > timeout:
                    problem = f"no result within {timeout:.0f}s"
                    break
                time.sleep(0.1)
        finally:
            if process.poll() is None:
                _end_group(process)
            reader.join(timeout=10)
            with lock:
                lines.extend(queue)
    returncode = None if problem else process.returncode
    return CliResult(command, returncode, "".join(lines), time.monotonic() - started, problem)


def _end_group(process: subprocess.Popen) -> None:
    """End the CLI we started and its children (the app's python, jsii's node), by group id."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --- The custom resource moto cannot run -------------------------------------------------------

# The CLI's stack-activity line for a stack event, printed once CreateStack has returned
# (toolkit-lib's directDeployment awaits createStack, then starts the activity monitor), e.g.
#   Dpg-Dev-Network |   0 | 12:00:00 AM | CREATE_IN_PROGRESS | AWS::CloudFormation::Stack | Dpg-Dev-Network User Initiated
STACK_CREATING = re.compile(r"^(?P<stack>[A-Za-z][-A-Za-z0-9]*): creating stack\.\.\.")
STACK_CREATE_STARTED = re.compile(
    r"\|\s*CREATE_IN_PROGRESS\s*\|\s*AWS::CloudFormation::Stack\s*\|\s*(?P<stack>[A-Za-z][-A-Za-z0-9]*) User Initiated")

DOCKER_FAILURE = "error running docker"


class EmulationError(RuntimeError):
    pass


def restrict_default_security_group(clients: Callable[[str], Any], properties: dict[str, Any]) -> dict[str, Any]:
    """What CDK's handler does on Create (aws-cdk-lib 2.275,
    custom-resource-handlers/dist/aws-ec2/restrict-default-security-group-handler/index.js):

        revokeSecurityGroupEgress({GroupId, IpPermissions: [{IpRanges: [{CidrIp: "0.0.0.0/0"}], IpProtocol: "-1"}]})
        revokeSecurityGroupIngress({GroupId, IpPermissions: [{UserIdGroupPairs: [{GroupId, UserId: Account}], IpProtocol: "-1"}]})

    each ignoring InvalidPermission.NotFound, with GroupId = DefaultSecurityGroupId and
    Account from the resource properties. The same two calls, through boto3, against moto."""
    from botocore.exceptions import ClientError

    ec2 = clients("ec2")
    group, account = properties["DefaultSecurityGroupId"], properties["Account"]

    def rules() -> dict[str, list]:
        found = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
        return {"ingress": found["IpPermissions"], "egress": found["IpPermissionsEgress"]}

    before = rules()
    calls = (
        (ec2.revoke_security_group_egress,
         [{"IpRanges": [{"CidrIp": "0.0.0.0/0"}], "IpProtocol": "-1"}]),
        (ec2.revoke_security_group_ingress,
         [{"UserIdGroupPairs": [{"GroupId": group, "UserId": account}], "IpProtocol": "-1"}]),
    )
    for call, permissions in calls:
        try:
            call(GroupId=group, IpPermissions=permissions)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "InvalidPermission.NotFound":
                raise
    return {"group": group, "before": before, "after": rules()}


# Custom resource types whose handler is emulated, and how. Any other Custom:: type stops the
# deploy with an error: the test never answers SUCCESS for work nobody did.
HANDLERS: dict[str, Callable[[Callable[[str], Any], dict[str, Any]], dict[str, Any]]] = {
    "Custom::VpcRestrictDefaultSG": restrict_default_security_group,
}


@dataclass
class Answered:
    stack: str
    logical_id: str
    resource_type: str
    properties: dict[str, Any]
    invocation_log: str      # what moto logged when it invoked the provider's Lambda
    evidence: dict[str, Any]  # what the emulated handler saw and left
    answered_at: datetime    # when SUCCESS was sent (UTC)


@dataclass
class CustomResourceProvider:
    """Plays the AWS Lambda runtime for the custom resources in `HANDLERS`, and nothing else.

    moto's CloudFormation does what AWS does with a `Custom::` resource: it invokes the
    provider's Lambda with a Create request and keeps the stack in CREATE_IN_PROGRESS until a
    SUCCESS answer arrives at the request's ResponseURL (`/cloudformation_<region>/cfnresponse`;
    this holds for CreateStack — `cdk deploy --method=direct` — while moto's change-set path
    marks the stack complete without waiting for any answer, which would hide the problem).
    moto runs Lambda code only inside Docker, and there is no Docker engine here: its invocation
    fails and moto writes "error running docker: ..." to the function's log group.

    Then, and only then, this class does the handler's work: it reads the resource's properties
    from the deployed template, resolves them against moto (the VPC's default security group id,
    the account), makes exactly the API calls CDK's handler makes (see
    `restrict_default_security_group`) and sends CloudFormation the answer the handler's wrapper
    would send (Status SUCCESS, to the same cfnresponse URL). If the API calls fail, nothing is
    answered and the deploy is stopped with the error. What the test later asserts about the
    default security group is what those calls left in moto. Any other custom resource type, or
    an invocation that did not fail for want of Docker, stops the deploy instead.

    When: after the CLI prints the stack's first activity line, which it does only once
    CreateStack has returned. moto creates a stack's resources inside the CreateStack request,
    lazily, and a concurrent ListStackResources (or the SUCCESS answer, which walks the resources)
    could create a resource a second time; after the request, all of them exist.

    Why not moto's `{"lambda": {"use_docker": false}}` (server config `/moto-api/config`): that
    swaps in a Lambda backend whose Invoke API echoes the payload; CloudFormation's custom
    resources call the function object's own invoke, which always goes to Docker. Echoing would
    not do the handler's work anyway."""

    clients: Callable[[str], Any]
    endpoint: str
    invocation_wait: float = 30.0
    stall: float = 180.0  # CreateStack sent, no activity line after this long: stop, say why
    answered: list[Answered] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    creating: dict[str, float] = field(default_factory=dict)

    def on_cli_line(self, line: str) -> str | None:
        """`run_cdk` callback: once the CLI shows that CreateStack of a stack has returned (all
        resources made, the provider invoked), serve that stack's custom resources."""
        creating = STACK_CREATING.search(line)
        if creating:
            self.creating.setdefault(creating["stack"], time.monotonic())
        match = STACK_CREATE_STARTED.search(line)
        if not match or match["stack"] in self.seen:
            return None
        self.seen.add(match["stack"])
        try:
            self.serve(match["stack"])
        except Exception as e:  # noqa: BLE001 - reported as the reason the deploy was stopped
            return f"custom resource of stack {match['stack']}: {type(e).__name__}: {e}"
        return None

    def watch(self) -> str | None:
        """`run_cdk` watch: a stack whose CreateStack was sent long ago but whose activity line
        never came means this class cannot tell when to serve it (the CLI's output changed?)."""
        now = time.monotonic()
        late = [name for name, since in self.creating.items() if name not in self.seen and now - since > self.stall]
        if late:
            return (f"the CLI said `{late[0]}: creating stack...` {self.stall:.0f}s ago but printed no "
                    f"activity line for it (expected one matching {STACK_CREATE_STARTED.pattern!r})")
        return None

    def serve(self, stack_name: str) -> None:
        cfn = self.clients("cloudformation")
        summary = next((s for s in cfn.list_stacks()["StackSummaries"]
                        if s["StackName"] == stack_name and s["StackStatus"] != "DELETE_COMPLETE"), None)
        if summary is None or summary["StackStatus"] != "CREATE_IN_PROGRESS":
            return
        template = cfn.get_template(StackName=stack_name)["TemplateBody"]
        if isinstance(template, str):
            template = json.loads(template)
        customs = {lid: r for lid, r in template.get("Resources", {}).items()
                   if r.get("Type", "").startswith("Custom::") or r.get("Type") == "AWS::CloudFormation::CustomResource"}
        if not customs:
            return
        physical = {r["LogicalResourceId"]: r for r in
                    cfn.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
                    if r["LogicalResourceId"]}
        for logical_id, resource in customs.items():
            kind = resource["Type"]
            if kind not in HANDLERS:
                raise EmulationError(f"{logical_id} is a {kind}, whose Lambda moto cannot run and this "
                                     f"test does not emulate (emulated: {', '.join(HANDLERS)})")
            token = resource["Properties"]["ServiceToken"]
            function_lid = token.get("Fn::GetAtt", [None])[0] if isinstance(token, dict) else None
            if function_lid not in physical:
                raise EmulationError(f"{logical_id}: its ServiceToken {token!r} is not a Lambda of this stack")
            function_name = physical[function_lid]["PhysicalResourceId"]
            log = self._invocation_log(function_name)
            if DOCKER_FAILURE not in log:
                raise EmulationError(f"{logical_id}: moto's invocation of {function_name} did not fail for "
                                     f"want of Docker, so it is not emulated; its log: {log!r}")
            properties = {key: self._resolve(value, physical)
                          for key, value in resource["Properties"].items()}
            evidence = HANDLERS[kind](self.clients, properties)
            answered_at = datetime.now(timezone.utc)
            self._answer(summary["StackId"], logical_id, physical[logical_id]["PhysicalResourceId"])
            self.answered.append(Answered(stack_name, logical_id, kind, properties, log, evidence, answered_at))

    def _invocation_log(self, function_name: str) -> str:
        """What moto logged when CloudFormation invoked the provider (its Lambda thread may still
        be finishing: wait a little)."""
        logs = self.clients("logs")
        group = f"/aws/lambda/{function_name}"
        deadline = time.monotonic() + self.invocation_wait
        while True:
            try:
                events = logs.filter_log_events(logGroupName=group)["events"]
            except logs.exceptions.ResourceNotFoundException:
                events = []
            if events or time.monotonic() > deadline:
                return "\n".join(e["message"] for e in events)
            time.sleep(0.25)

    def _resolve(self, value: Any, physical: dict[str, dict]) -> Any:
        """The intrinsics CDK's providers use in their properties, resolved against moto."""
        if isinstance(value, list):
            return [self._resolve(v, physical) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            name = value["Ref"]
            if name == "AWS::AccountId":
                return self.clients("sts").get_caller_identity()["Account"]
            if name == "AWS::Region":
                return REGION
            if name in physical:
                return physical[name]["PhysicalResourceId"]
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            target = physical.get(logical_id)
            if target and target["ResourceType"] == "AWS::Lambda::Function" and attribute == "Arn":
                function = self.clients("lambda").get_function(FunctionName=target["PhysicalResourceId"])
                return function["Configuration"]["FunctionArn"]
            if target and target["ResourceType"] == "AWS::EC2::VPC" and attribute == "DefaultSecurityGroup":
                groups = self.clients("ec2").describe_security_groups(Filters=[
                    {"Name": "vpc-id", "Values": [target["PhysicalResourceId"]]},
                    {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
                if len(groups) == 1:
                    return groups[0]["GroupId"]
        raise EmulationError(f"cannot resolve {value!r}")

    def _answer(self, stack_id: str, logical_id: str, physical_id: str) -> None:
        """The response CDK's provider wrapper (nodejs-entrypoint) PUTs to the ResponseURL. moto
        builds that URL as <its host>/cloudformation_<region>/cfnresponse?stack=<stack id> and
        reads Status, StackId, LogicalResourceId and Data from the body."""
        body = json.dumps({
            "Status": "SUCCESS",
            "Reason": "SUCCESS",
            "PhysicalResourceId": physical_id,
            "StackId": stack_id,
            # moto's request went to a Lambda that never started, so its RequestId is unknown
            # here; moto does not check it.
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": logical_id,
            "NoEcho": False,
            "Data": {},
        }).encode()
        url = f"{self.endpoint}/cloudformation_{REGION}/cfnresponse?stack={stack_id}"
        request = urllib.request.Request(url, data=body, method="PUT", headers={"content-type": ""})
        with _LOOPBACK.open(request, timeout=30) as response:
            if response.status != 200:
                raise EmulationError(f"CloudFormation answered {response.status} to the SUCCESS response")


# --- Reading back what was deployed ------------------------------------------------------------

def app_stacks(assembly: Path) -> list[str]:
    """The CloudFormation stack names of the app, from the cloud assembly `cdk deploy` wrote."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    return [artifact.get("properties", {}).get("stackName") or name
            for name, artifact in manifest.get("artifacts", {}).items()
            if artifact.get("type") == "aws:cloudformation:stack"]


@dataclass
class DeployedStack:
    name: str
    status: str
    template: dict                # what CloudFormation received (GetTemplate)
    resources: dict[str, dict]    # logical id -> ListStackResources summary, for what moto made
    events: list[dict]

    def of_type(self, resource_type: str) -> dict[str, dict]:
        return {lid: r for lid, r in self.resources.items() if r["ResourceType"] == resource_type}

    def template_of_type(self, resource_type: str) -> dict[str, dict]:
        return {lid: r for lid, r in self.template["Resources"].items() if r["Type"] == resource_type}

    def physical_id(self, logical_id: str) -> str:
        return self.resources[logical_id]["PhysicalResourceId"]

    @property
    def skipped(self) -> dict[str, str]:
        """Template resources that moto's CloudFormation did not create because it does not model
        their type (it warns "No Moto CloudFormation support for ..." and goes on): logical id ->
        type. CloudFormation lists them with an empty logical id."""
        return {lid: r["Type"] for lid, r in self.template["Resources"].items() if lid not in self.resources}


def read_stacks(clients: Callable[[str], Any], names: Iterable[str]) -> dict[str, DeployedStack]:
    cfn = clients("cloudformation")
    stacks = {}
    for name in names:  # the app's stacks: CDK writes their templates as JSON
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        template = cfn.get_template(StackName=name)["TemplateBody"]
        if isinstance(template, str):
            template = json.loads(template)
        summaries = []
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
            summaries += page["StackResourceSummaries"]
        resources = {r["LogicalResourceId"]: r for r in summaries if r["LogicalResourceId"]}
        events = []
        for page in cfn.get_paginator("describe_stack_events").paginate(StackName=name):
            events += page["StackEvents"]
        stacks[name] = DeployedStack(name, status, template, resources, events)
    return stacks


class Resolver:
    """Resolves the intrinsics of a deployed template against what moto made: enough to compare
    a template's property with the live resource (Ref, Fn::GetAtt of the attributes used here,
    Fn::ImportValue through ListExports, Fn::Join). Anything else raises: no guessing."""

    PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws",
              "AWS::URLSuffix": "amazonaws.com"}

    def __init__(self, clients: Callable[[str], Any], stacks: dict[str, DeployedStack]) -> None:
        self.clients = clients
        self.stacks = stacks
        self._exports: dict[str, str] | None = None

    def __call__(self, value: Any, stack: DeployedStack) -> Any:
        if isinstance(value, list):
            return [self(v, stack) for v in value]
        if not isinstance(value, dict) or len(value) != 1:
            return value
        (function, argument), = value.items()
        if function == "Ref":
            if argument in self.PSEUDO:
                return self.PSEUDO[argument]
            if argument == "AWS::StackName":
                return stack.name
            return stack.physical_id(argument)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.attribute(stack, logical_id, attribute)
        if function == "Fn::ImportValue":
            return self.exports[self(argument, stack)]
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(self(p, stack)) for p in parts)
        if function.startswith("Fn::"):
            raise ValueError(f"{stack.name}: cannot resolve {value!r}")
        return value

    def attribute(self, stack: DeployedStack, logical_id: str, attribute: str) -> str:
        kind = stack.resources[logical_id]["ResourceType"]
        physical = stack.physical_id(logical_id)
        if kind == "AWS::KMS::Key" and attribute == "Arn":
            return self.clients("kms").describe_key(KeyId=physical)["KeyMetadata"]["Arn"]
        if kind == "AWS::EC2::SecurityGroup" and attribute == "GroupId":
            return physical
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{physical}"
        if kind == "AWS::Logs::LogGroup" and attribute == "Arn":
            return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}:*"
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return self.clients("iam").get_role(RoleName=physical)["Role"]["Arn"]
        raise ValueError(f"{stack.name}: cannot resolve Fn::GetAtt {logical_id}.{attribute} ({kind})")

    @property
    def exports(self) -> dict[str, str]:
        if self._exports is None:
            self._exports = {}
            for page in self.clients("cloudformation").get_paginator("list_exports").paginate():
                self._exports.update({e["Name"]: e["Value"] for e in page["Exports"]})
        return self._exports


# --- By hand (README: "Try it without an AWS account") -----------------------------------------

def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python tests/deploy_support.py")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("moto-server", add_help=False,
                        help="moto_server with fix_moto() applied; moto_server's own options follow")
    serve = commands.add_parser("custom-resources",
                                help="answer the VpcRestrictDefaultSG custom resource of a stack that "
                                     "`cdk deploy --method=direct` is waiting on")
    serve.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://localhost:5000"))
    serve.add_argument("stacks", nargs="+")
    args, rest = parser.parse_known_args(argv)
    if args.command == "moto-server":
        fix_moto()
        add_user_pools_to_moto_cloudformation()
        from moto.server import main as moto_main
        moto_main(rest)
        return 0
    provider = CustomResourceProvider(boto3_client_factory(args.endpoint), args.endpoint)
    for stack in args.stacks:
        provider.serve(stack)
    for answer in provider.answered:
        print(f"{answer.stack}/{answer.logical_id} ({answer.resource_type}): SUCCESS sent; "
              f"properties {answer.properties}")
    if not provider.answered:
        print("nothing to answer: no stack in CREATE_IN_PROGRESS with an emulated custom resource")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
