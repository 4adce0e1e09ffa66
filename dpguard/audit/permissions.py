"""From the API operations the audit makes to the IAM actions its role needs.

`Clients` records every call as "<signing name>:<OperationName>" (e.g. "s3:GetBucketEncryption").
For most services the IAM action has exactly that name; the exceptions are listed below, each
with the service documentation's reason. `required_actions(calls)` turns a record of calls
(a Counter, a dict or any iterable of keys) into the set of IAM actions, and
`policy_document(actions)` writes them as the read-only policy of docs/audit-role-policy.json.
tests/test_audit_policy.py runs every collector under moto and checks the two agree.
"""
from __future__ import annotations

from typing import Iterable

# Signing names that differ from the IAM service prefix.
PREFIX = {
    "monitoring": "cloudwatch",  # CloudWatch's endpoint and signing name; IAM says cloudwatch:*
    "email": "ses",
    "s3control": "s3",           # S3 Control is authorised under the s3 prefix
}

# "<iam prefix>:<OperationName>" -> IAM action, where the two differ. Everything else: identity.
IAM_ACTION = {
    # --- S3 (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html)
    "s3:ListBuckets": "s3:ListAllMyBuckets",
    "s3:ListDirectoryBuckets": "s3:ListAllMyDirectoryBuckets",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjects": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
    "s3:ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",  # the bucket's (s3 client); see below
    "s3:GetBucketLifecycle": "s3:GetLifecycleConfiguration",
    "s3:GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "s3:GetBucketReplication": "s3:GetReplicationConfiguration",
    "s3:GetBucketNotification": "s3:GetBucketNotification",
    "s3:GetBucketNotificationConfiguration": "s3:GetBucketNotification",
    "s3:GetBucketCors": "s3:GetBucketCORS",
    "s3:GetBucketAccelerateConfiguration": "s3:GetAccelerateConfiguration",
    "s3:GetBucketAnalyticsConfiguration": "s3:GetAnalyticsConfiguration",
    "s3:ListBucketAnalyticsConfigurations": "s3:GetAnalyticsConfiguration",
    "s3:GetBucketInventoryConfiguration": "s3:GetInventoryConfiguration",
    "s3:ListBucketInventoryConfigurations": "s3:GetInventoryConfiguration",
    "s3:GetBucketMetricsConfiguration": "s3:GetMetricsConfiguration",
    "s3:ListBucketMetricsConfigurations": "s3:GetMetricsConfiguration",
    "s3:GetBucketIntelligentTieringConfiguration": "s3:GetIntelligentTieringConfiguration",
    "s3:ListBucketIntelligentTieringConfigurations": "s3:GetIntelligentTieringConfiguration",
    "s3:GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
    # Unchanged, listed so that nobody "fixes" them: GetBucketLocation, GetBucketPolicy,
    # GetBucketPolicyStatus, GetBucketVersioning, GetBucketLogging, GetBucketWebsite,
    # GetBucketTagging, GetBucketAcl, GetBucketOwnershipControls keep their names.
    #
    # S3 Control (the account's Block Public Access). Clients records it under the signing name
    # "s3" too, i.e. as "s3:GetPublicAccessBlock", the same key as the bucket call above; only a
    # record keyed "s3control:..." can be told apart (see PREFIX).
    "s3control:GetPublicAccessBlock": "s3:GetAccountPublicAccessBlock",
    "s3control:ListAccessPoints": "s3:ListAccessPoints",
    # --- API Gateway: authorised by HTTP verb on the resource path, not by operation name.
    "apigateway:GetRestApis": "apigateway:GET",
    "apigateway:GetStages": "apigateway:GET",
    "apigateway:GetDomainNames": "apigateway:GET",
    "apigateway:GetApis": "apigateway:GET",
    # --- Lambda: versioned operation names in some SDK models
    "lambda:ListFunctions20150331": "lambda:ListFunctions",
    "lambda:GetFunctionConfiguration20150331v2": "lambda:GetFunctionConfiguration",
    # --- KMS, CloudTrail, RDS, IAM, EC2, Logs, SNS, SQS, Secrets Manager, GuardDuty, Cognito,
    # Lambda, DynamoDB: the IAM action is the operation name (kms:GetKeyRotationStatus,
    # cloudtrail:GetTrailStatus, rds:DescribeDBParameters, iam:GetLoginProfile,
    # ec2:DescribeFlowLogs, logs:DescribeLogGroups, sns:GetTopicAttributes, sqs:GetQueueAttributes,
    # secretsmanager:DescribeSecret, guardduty:GetDetector, cognito-idp:DescribeUserPool,
    # lambda:ListFunctions, dynamodb:DescribeTable, dynamodb:DescribeContinuousBackups,
    # dynamodb:ListTagsOfResource, dynamodb:GetResourcePolicy, ...).
}

# Actions the policy holds although no collector calls them, and why.
EXPLICIT = {
    "sts:GetCallerIdentity": "names the account being audited (Clients.account); STS answers it "
                             "even without a grant, listed for clarity",
    "organizations:ListAccounts": "`dpguard audit --org` lists the organization's accounts "
                                  "(only effective in the management or delegated-administrator account)",
    "ec2:DescribeRegions": "`dpguard audit --all-regions` lists the regions enabled in the account",
}

# Verbs a read-only policy may use. Get/List/Describe only, plus these named read actions.
READ_VERBS = ("Get", "List", "Describe")
READ_EXCEPTIONS = {
    "apigateway:GET": "API Gateway's read access is the HTTP verb GET on its resources",
    "iam:GenerateCredentialReport": "IAM access level Read: builds the credential report that "
                                    "iam:GetCredentialReport returns",
    "iam:GenerateServiceLastAccessedDetails": "IAM access level Read: last-used data of principals",
}

# Read actions that return data or secrets rather than configuration: never in the audit role.
DATA_ACTIONS = frozenset({
    "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAcl", "s3:GetObjectTagging",
    "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue",
    "kms:Decrypt", "kms:GenerateDataKey", "kms:GetParametersForImport",
    "ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath",
    "sqs:ReceiveMessage", "logs:GetLogEvents", "logs:FilterLogEvents", "logs:GetQueryResults",
    "logs:StartQuery", "ec2:GetPasswordData", "ec2:GetConsoleOutput", "ec2:GetConsoleScreenshot",
    "lambda:GetFunction", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan",
    "cognito-idp:ListUsers", "cognito-idp:AdminGetUser", "rds:DownloadDBLogFilePortion",
    "cloudtrail:LookupEvents", "sts:GetSessionToken", "sts:GetFederationToken",
    "iam:GetSSHPublicKey",
})


def iam_action(call: str) -> str:
    """The IAM action that authorises one recorded call ("s3:ListBuckets" -> "s3:ListAllMyBuckets")."""
    prefix, _, operation = call.partition(":")
    if call in IAM_ACTION:
        return IAM_ACTION[call]
    prefix = PREFIX.get(prefix, prefix)
    key = f"{prefix}:{operation}"
    return IAM_ACTION.get(key, key)


def required_actions(calls: Iterable[str]) -> set[str]:
    """The IAM actions behind a record of calls (keys of Clients.calls / AuditResult.calls)."""
    return {iam_action(call) for call in calls}


def is_read_only(action: str) -> bool:
    _, _, name = action.partition(":")
    if action in READ_EXCEPTIONS:
        return True
    return action not in DATA_ACTIONS and name.startswith(READ_VERBS) and "*" not in action


def policy_document(actions: Iterable[str]) -> dict:
    """A policy with one Allow statement per service, actions sorted, no wildcards."""
    by_service: dict[str, list[str]] = {}
    for action in sorted(set(actions)):
        by_service.setdefault(action.split(":")[0], []).append(action)
    statements = []
    for service, names in sorted(by_service.items()):
        sid = "".join(part.capitalize() for part in service.replace("-", " ").split()) + "Read"
        statements.append({"Sid": sid, "Effect": "Allow", "Action": names, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}


def policy_actions(document: dict) -> set[str]:
    """Every action the Allow statements of a policy document grant."""
    out: set[str] = set()
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect") != "Allow":
            continue
        action = statement.get("Action", [])
        out.update([action] if isinstance(action, str) else action)
    return out
