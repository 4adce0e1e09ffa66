"""The organisation audit (docs/audit-at-scale.md) on moto's server: the state machine's
definition, as the stack (dpguard/stacks/org_audit.py) synthesizes it, run by
dpguard/org_audit/runner.py, its Lambda tasks calling dpguard/org_audit/handlers.py's handlers, over an
organisation of several moto accounts.

moto's STS lets anyone assume any role, in any account, with any ExternalId; AWS checks the
role's trust policy. `trust` puts that check back on the client side: AssumeRole into an account
whose role the test removed, or without the ExternalId, is denied as AWS denies it."""
from __future__ import annotations

import copy
import json
import threading

import boto3
import botocore.client
import botocore.exceptions
import pytest

from deploy_support import MotoServer
from dpguard.org_audit import handlers as org
from dpguard.org_audit.runner import REFERENCE, DefinitionError, Runner, bind

REGION = "us-east-1"
AUDITOR = "123456789012"  # moto's default account: the caller's credentials
EXTERNAL_ID = "dpguard-2026-external"
BUCKET = "dpguard-findings-test"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory) -> dict:
    """The state machine's definition of the stack, synthesized with its default settings."""
    import aws_cdk as cdk

    from dpguard.stacks import EnvironmentSettings
    from dpguard.stacks.org_audit import OrgAuditSettings, OrgAuditStack, definition_of

    app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk.out")))
    stack = OrgAuditStack(app, "OrgAudit", org=OrgAuditSettings(organization_id="o-a1b2c3d4e5"),
                          settings=EnvironmentSettings(name="test", allowed_cidrs=("10.0.0.0/8",),
                                                       alert_email="security@example.com", retention_days=365,
                                                       data_owner="platform-team"))
    return definition_of(app.synth().get_stack_by_name(stack.stack_name).template)


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    with MotoServer(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture(scope="module")
def env(moto):
    patch = pytest.MonkeyPatch()
    for name, value in {"AWS_ENDPOINT_URL": moto.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
                        "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}.items():
        patch.setenv(name, value)
    patch.delenv("AWS_PROFILE", raising=False)
    yield patch
    patch.undo()


class Trust:
    """AssumeRole as AWS answers it: denied for an account in `missing` (its role is gone) and
    without the ExternalId. Also `faults[operation] = [answer, ...]`: the next calls of that
    operation get these answers (a dict) instead of moto's."""

    def __init__(self) -> None:
        self.missing: set[str] = set()
        self.faults: dict[str, list] = {}
        self.assumed: list[dict] = []
        self.lock = threading.Lock()

    def call(self, real):
        def make_api_call(client, operation, params):
            with self.lock:
                queued = self.faults.get(operation)
                answer = queued.pop(0) if queued else None
            if answer is not None:
                return answer
            if operation == "AssumeRole" and ":role/dpguard-audit" in params["RoleArn"]:
                with self.lock:
                    self.assumed.append(dict(params))
                account = params["RoleArn"].split(":")[4]
                if account in self.missing or params.get("ExternalId") != EXTERNAL_ID:
                    raise botocore.exceptions.ClientError(
                        {"Error": {"Code": "AccessDenied", "Message": f"not authorized to perform: sts:AssumeRole "
                                                                      f"on resource: {params['RoleArn']}"}}, operation)
            return real(client, operation, params)
        return make_api_call


def member(account: str, service: str):
    sts = boto3.client("sts")
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/seed", RoleSessionName="seed")["Credentials"]
    return boto3.client(service, region_name=REGION, aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])


@pytest.fixture(scope="module")
def organisation(env):
    """An organisation of the auditor (management) account and four members: an open security
    group in the first, an unencrypted bucket in the second, a bucket encrypted with a KMS key in
    the third, a plain bucket in the fourth."""
    boto3.client("organizations").create_organization(FeatureSet="ALL")
    members = []
    for name in ("network", "data", "keys", "legacy"):
        status = boto3.client("organizations").create_account(AccountName=name, Email=f"{name}@example.com")
        members.append(status["CreateAccountStatus"]["AccountId"])
    network, data, keys, legacy = members
    ec2 = member(network, "ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName="ssh-from-anywhere", Description="open", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    member(data, "s3").create_bucket(Bucket="data-plain-bucket")
    key = member(keys, "kms").create_key()["KeyMetadata"]["Arn"]
    s3 = member(keys, "s3")
    s3.create_bucket(Bucket="keys-encrypted-bucket")
    s3.put_bucket_encryption(Bucket="keys-encrypted-bucket", ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]})
    member(legacy, "s3").create_bucket(Bucket="legacy-plain-bucket")
    # the auditor account: the findings bucket and its key, Security Hub
    audit_key = boto3.client("kms").create_key(Description="dpguard findings")["KeyMetadata"]["Arn"]
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("securityhub").enable_security_hub()
    topic = boto3.client("sns").create_topic(Name="dpguard-alerts")["TopicArn"]
    inbox = boto3.client("sqs").create_queue(QueueName="alerts-inbox")["QueueUrl"]
    inbox_arn = boto3.client("sqs").get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])
    boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn["Attributes"]["QueueArn"],
                                  Attributes={"RawMessageDelivery": "true"})
    for name, value in {"BUCKET": BUCKET, "KEY_ARN": audit_key, "EXTERNAL_ID": EXTERNAL_ID, "REGIONS": REGION,
                        "AUDIT_ROLE_NAME": "dpguard-audit", "SECURITY_HUB": "on"}.items():
        env.setenv(name, value)
    return {"network": network, "data": data, "keys": keys, "legacy": legacy, "group": group, "key": audit_key,
            "topic": topic, "inbox": inbox}


@pytest.fixture(scope="module")
def definition(synthesized, organisation) -> dict:
    """The stack's definition with its bucket and alerts topic bound to the test's."""
    values = {}
    for name in REFERENCE.findall(json.dumps(synthesized)):
        if name.startswith("Results"):
            values[name] = BUCKET
        elif name.startswith("AlertsTopic"):
            values[name] = organisation["topic"]
    return bind(synthesized, values)


@pytest.fixture(scope="module")
def trust(organisation):
    trust = Trust()
    patch = pytest.MonkeyPatch()
    patch.setattr(botocore.client.BaseClient, "_make_api_call", trust.call(botocore.client.BaseClient._make_api_call))
    yield trust
    patch.undo()


def run(definition, **execution_input):
    return Runner(definition, interval_scale=0).run(execution_input)


def summary(execution) -> dict:
    """What the Report task returned: the definition keeps it at $.report.summary."""
    assert execution.status == "SUCCEEDED", execution.cause
    return execution.output["report"]["summary"]


def s3_json(key: str):
    return json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


def hub_findings() -> dict[str, dict]:
    hub = boto3.client("securityhub")
    out, token = {}, None
    while True:
        page = hub.get_findings(MaxResults=100, **({"NextToken": token} if token else {}))
        out.update({f["Id"]: f for f in page["Findings"]})
        token = page.get("NextToken")
        if not token:
            return out


@pytest.fixture(scope="module")
def first_run(definition, trust):
    """Day one: every account audited; the import of the 'data' account fails once, and is retried."""
    refused = {"FailedCount": 1, "SuccessCount": 0,
               "FailedFindings": [{"Id": "x", "ErrorCode": "InvalidInput", "ErrorMessage": "throttled, say"}]}
    trust.faults["BatchImportFindings"] = [refused]
    return run(definition, date="2026-12-01")


@pytest.fixture(scope="module")
def second_run(first_run, definition, organisation, trust):
    """Day two: the open port is closed, the 'legacy' account's role is gone, and the task of the
    'keys' account fails every time (out of memory, say) under a definition that tolerates it."""
    ec2 = member(organisation["network"], "ec2")
    ec2.revoke_security_group_ingress(GroupId=organisation["group"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    trust.missing.add(organisation["legacy"])
    tolerant = copy.deepcopy(definition)
    tolerant["States"]["AuditAccounts"]["ToleratedFailurePercentage"] = 25

    def audit_account(event, context):
        if event["account"] == organisation["keys"]:
            raise MemoryError("the function ran out of memory")
        return org.audit_account(event, context)

    functions = {"list-accounts": org.list_accounts, "audit-account": audit_account, "report": org.report}
    return Runner(tolerant, functions, interval_scale=0).run({"date": "2026-12-02"})


def test_the_run_lists_the_organisation_and_audits_every_account(first_run, organisation):
    assert first_run.status == "SUCCEEDED", first_run.cause
    planned = s3_json("runs/date=2026-12-01/accounts.json")
    accounts = {organisation[n] for n in ("network", "data", "keys", "legacy")} | {AUDITOR}
    assert {a["account"] for a in planned} == accounts
    assert all(a["regions"] == [REGION] for a in planned)
    report = summary(first_run)
    assert report["accounts"] == {"planned": 5, "audited": 5, "not_audited": [], "missing": []}
    for account in accounts:
        doc = s3_json(f"findings/date=2026-12-01/account={account}/audit.json")
        assert {f["account"] for f in doc["findings"] if f["account"]} == {account}


def test_findings_land_in_the_account_that_has_the_problem(first_run, organisation):
    def rules_of(account):
        doc = s3_json(f"findings/date=2026-12-01/account={account}/audit.json")
        return {(f["rule_id"], f["arn"]) for f in doc["findings"]}

    network = rules_of(organisation["network"])
    assert any(rule == "DP-SgOpenIngress" and organisation["group"] in arn for rule, arn in network)
    assert ("DP-S3Encryption", "arn:aws:s3:::data-plain-bucket") in rules_of(organisation["data"])
    keys = rules_of(organisation["keys"])
    assert ("DP-S3Encryption", "arn:aws:s3:::keys-encrypted-bucket") not in keys
    assert any(arn == "arn:aws:s3:::keys-encrypted-bucket" for _, arn in keys)  # read, and judged on the rest


def test_every_object_is_written_with_the_findings_key(first_run, organisation):
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="")["Contents"]
            if not o["Key"].startswith("runs/map/")]  # the Map's results: the bucket's default encryption
    assert any(k.startswith("reports/date=2026-12-01/") for k in keys)
    assert any(k.startswith("state/securityhub/") for k in keys)
    for key in keys:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"] == organisation["key"], key


def test_the_report_is_written_from_every_account(first_run, organisation):
    data = s3_json("reports/date=2026-12-01/dpguard-report.json")
    accounts = {f.get("account") for f in data["findings"]}
    assert {organisation["network"], organisation["data"], organisation["keys"]} <= accounts
    assert len([i for i in data["evidence"]["inputs"] if i["kind"] == "audit-json"]) == 5
    names = {k.rsplit("/", 1)[1] for k in summary(first_run)["keys"]}
    assert names == {"dpguard-report.json", "dpguard-report.html", "dpguard-report.md", "dpguard-findings.csv"}
    assert summary(first_run)["violations"] == data["summary"]["violations"] > 0


def test_the_summary_goes_to_the_alerts_topic(first_run, organisation):
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=organisation["inbox"], MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(m["Body"]) for m in messages]
    assert [b["date"] for b in bodies] == ["2026-12-01"]
    assert bodies[0]["summary"] == summary(first_run) and bodies[0]["bucket"] == BUCKET


def test_security_hub_has_every_account_s_findings_in_the_auditor_account(first_run, organisation):
    findings = hub_findings()
    open_port = [f for f in findings.values() if f["GeneratorId"] == "DP-SgOpenIngress"
                 and f["ProductFields"]["dpguard/Account"] == organisation["network"]]
    assert len(open_port) == 1
    finding = open_port[0]
    assert finding["AwsAccountId"] == AUDITOR
    assert finding["ProductArn"] == f"arn:aws:securityhub:{REGION}:{AUDITOR}:product/{AUDITOR}/default"
    assert finding["Resources"][0]["Type"] == "AwsEc2SecurityGroup"
    assert organisation["group"] in finding["Resources"][0]["Id"]
    assert finding["Compliance"] == {"Status": "FAILED", "RelatedRequirements": ["dpguard clause 1"]}
    assert {f["ProductFields"]["dpguard/Account"] for f in findings.values()} >= {
        organisation[n] for n in ("network", "data", "keys", "legacy")}


def test_a_refused_import_fails_the_task_and_step_functions_retries_it(first_run, organisation):
    retries = first_run.of_type("Retry")
    assert [(r["state"], r["error"]) for r in retries] == [("AuditAccount", "ImportFailed")]
    summaries = [s3_json(f"findings/date=2026-12-01/account={organisation[n]}/summary.json")
                 for n in ("network", "data", "keys", "legacy")]
    assert all(s["securityhub"]["imported"] > 0 for s in summaries)


def test_the_external_id_is_passed_to_every_audit_role(first_run, trust):
    assert trust.assumed and {a.get("ExternalId") for a in trust.assumed} == {EXTERNAL_ID}


def test_an_account_whose_role_is_gone_is_reported_not_audited_and_the_others_finish(second_run, organisation):
    assert second_run.status == "SUCCEEDED", second_run.cause
    legacy = organisation["legacy"]
    saved = s3_json(f"findings/date=2026-12-02/account={legacy}/summary.json")
    assert saved["audited"] is False and "AccessDenied" in saved["reason"]
    assert summary(second_run)["accounts"]["not_audited"] == [legacy]
    assert summary(second_run)["accounts"]["audited"] == 3  # of 5: 'keys' left no result (below)
    gap = [f for f in s3_json(f"findings/date=2026-12-02/account={legacy}/audit.json")["findings"]
           if f["rule_id"] == "DP-AuditComplete"]
    assert gap and "was not audited" in gap[0]["message"]
    report = s3_json("reports/date=2026-12-02/dpguard-report.json")
    assert any(f["rule_id"] == "DP-AuditComplete" and f.get("account") == legacy for f in report["findings"])


def test_a_finding_gone_from_a_complete_audit_is_archived_in_security_hub(second_run, organisation):
    findings = hub_findings()
    open_port = next(f for f in findings.values() if f["GeneratorId"] == "DP-SgOpenIngress"
                     and f["ProductFields"]["dpguard/Account"] == organisation["network"])
    assert open_port["RecordState"] == "ARCHIVED"
    assert open_port["Compliance"]["Status"] == "PASSED"
    still = next(f for f in findings.values() if f["GeneratorId"] == "DP-S3Encryption"
                 and f["ProductFields"]["dpguard/Account"] == organisation["data"])
    assert still["RecordState"] == "ACTIVE"
    # unchanged since day one: not imported again (Security Hub bills every import)
    assert still["CreatedAt"] == still["UpdatedAt"]
    data = s3_json(f"findings/date=2026-12-02/account={organisation['data']}/summary.json")
    assert data["securityhub"]["unchanged"] > 0


def test_an_unchanged_finding_is_imported_again_only_when_changed_or_a_month_old():
    before = {"Id": "dpguard/1/r/DP-X/arn", "UpdatedAt": "2026-11-01T00:00:00.000Z", "Title": "t",
              "Note": {"Text": "acknowledged: why", "UpdatedAt": "2026-11-01T00:00:00.000Z"}}
    same = {**before, "UpdatedAt": "2026-11-20T00:00:00.000Z",
            "Note": {**before["Note"], "UpdatedAt": "2026-11-20T00:00:00.000Z"}}
    assert not org._changed(same, before, same["UpdatedAt"])
    assert org._changed({**same, "Title": "other"}, before, same["UpdatedAt"])
    month = {**same, "UpdatedAt": "2026-12-01T00:00:00.000Z"}
    assert org._changed(month, before, month["UpdatedAt"])
    assert org._changed(same, None, same["UpdatedAt"])


def test_an_account_not_audited_keeps_its_findings_active(second_run, organisation):
    legacy = organisation["legacy"]
    findings = [f for f in hub_findings().values() if f["ProductFields"]["dpguard/Account"] == legacy]
    bucket = [f for f in findings if f["GeneratorId"] == "DP-S3Encryption"]
    assert bucket and all(f["RecordState"] == "ACTIVE" for f in bucket)  # not read: not shown to be fixed
    assert any(f["GeneratorId"] == "DP-AuditComplete" and f["Compliance"]["Status"] == "WARNING" for f in findings)


def test_within_the_threshold_an_account_without_result_is_reported_missing(second_run, organisation):
    keys = organisation["keys"]
    assert summary(second_run)["accounts"]["missing"] == [keys]
    failed = second_run.of_type("MapItemFailed")
    assert [e["error"] for e in failed] == ["MemoryError"]
    report = s3_json("reports/date=2026-12-02/dpguard-report.json")
    gap = [f for f in report["findings"] if f["rule_id"] == "DP-AuditComplete" and f.get("account") == keys]
    assert gap and "left no result" in gap[0]["message"]


def test_the_map_fails_past_its_failure_threshold_and_no_report_is_written(definition):
    """The stack's definition (2 % tolerated) with one task of two failing: the run fails before
    the report."""
    reported = []

    def list_accounts(event, context):
        items = [{"account": "111111111111", "regions": [REGION]}, {"account": "222222222222", "regions": [REGION]}]
        boto3.client("s3").put_object(Bucket=BUCKET, Key="runs/date=2026-12-07/accounts.json", Body=json.dumps(items))
        return {"bucket": BUCKET, "key": "runs/date=2026-12-07/accounts.json", "date": "2026-12-07", "accounts": 2}

    def audit_account(event, context):
        if event["account"] == "222222222222":
            raise org.ImportFailed("Security Hub refused 1 of 1 findings")
        return {"account": event["account"], "date": event["date"]}

    functions = {"list-accounts": list_accounts, "audit-account": audit_account,
                 "report": lambda event, context: reported.append(event)}
    runner = Runner(definition, functions, interval_scale=0)
    execution = runner.run({"date": "2026-12-07"})
    assert execution.status == "FAILED"
    assert execution.error == "States.ExceedToleratedFailureThreshold"
    task = definition["States"]["AuditAccounts"]["ItemProcessor"]["States"]["AuditAccount"]
    attempts = next(r["MaxAttempts"] for r in task["Retry"] if "States.TaskFailed" in r["ErrorEquals"])
    assert [e["attempt"] for e in execution.of_type("Retry")] == list(range(1, attempts + 1))
    assert reported == []
    manifest = s3_json(f"runs/map/{runner.name}/manifest.json")
    rows = s3_json(manifest["ResultFiles"]["FAILED"][0]["Key"])
    assert [(r["Input"]["account"], r["Error"]) for r in rows] == [("222222222222", "ImportFailed")]


def test_the_access_review_of_every_account(second_run, organisation):
    out = org.access_review({"date": "2026-12-05"})
    assert out["accounts"] == 5 and out["not_audited"] == [organisation["legacy"]]
    review = s3_json(f"reviews/date=2026-12-05/account={organisation['keys']}/review.json")
    assert review["as_of"] == "2026-12-05" and review["accounts"][0]["account"] == organisation["keys"]
    markdown = boto3.client("s3").get_object(
        Bucket=BUCKET, Key=f"reviews/date=2026-12-05/account={organisation['keys']}/review.md")["Body"].read()
    assert b"access review" in markdown.lower()


@pytest.mark.parametrize("missing", ["BUCKET", "KEY_ARN", "EXTERNAL_ID"])
def test_missing_configuration_is_one_line(organisation, missing, monkeypatch):
    monkeypatch.delenv(missing)
    with pytest.raises(org.ConfigurationError) as raised:
        org.audit_account({"account": organisation["data"], "regions": [REGION], "date": "2026-12-06"})
    assert str(raised.value).count("\n") == 0 and missing in str(raised.value)


@pytest.mark.parametrize("event", [{"account": "12345", "regions": [REGION]},
                                   {"account": "111122223333", "regions": []},
                                   {"account": "111122223333", "regions": ["not a region"]},
                                   {"account": "111122223333", "regions": [REGION], "date": "yesterday"}])
def test_a_malformed_map_item_is_refused(organisation, event):
    with pytest.raises(ValueError):
        org.audit_account(event)


# ------------------------------------------------------------------------------ the runner alone

def fake_definition(max_concurrency: int, tolerated: int = 0, retry: dict | None = None) -> dict:
    task = {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:work", "End": True}
    if retry:
        task["Retry"] = [retry]
    return {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": max_concurrency,
        "ToleratedFailurePercentage": tolerated,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "Work", "States": {"Work": task}},
        "End": True}}}


def test_the_runner_never_runs_more_items_at_once_than_max_concurrency():
    running, peak, lock = [0], [0], threading.Lock()
    together = threading.Barrier(2, timeout=10)  # two must run side by side, or this breaks

    def work(event, context):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            together.wait()
        finally:
            with lock:
                running[0] -= 1
        return event

    execution = Runner(fake_definition(2), {"work": work}).run({"items": list(range(8))})
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output == list(range(8)) and peak[0] == 2


def test_the_runner_retries_with_backoff_up_to_max_attempts():
    calls = []

    def work(event, context):
        calls.append(event)
        raise TimeoutError("the API did not answer")

    runner = Runner(fake_definition(1, retry={"ErrorEquals": ["TimeoutError"], "IntervalSeconds": 3,
                                              "MaxAttempts": 2, "BackoffRate": 2.0}), {"work": work},
                    interval_scale=0)
    execution = runner.run({"items": ["only"]})
    assert len(calls) == 3  # the first attempt and two retries
    assert [e["attempt"] for e in execution.of_type("Retry")] == [1, 2]
    assert [e["wait"] for e in execution.of_type("Retry")] == [3, 6]  # waited 0 s: interval_scale
    assert execution.status == "FAILED" and execution.error == "States.ExceedToleratedFailureThreshold"


def test_the_runner_refuses_what_it_cannot_run():
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 1, "End": True}}}
    with pytest.raises(DefinitionError, match="Wait"):
        Runner(definition, {}).run({})
