"""S3 buckets: encryption, Block Public Access, policy, ACL-free ownership, versioning and its
lifecycle, access logging, website hosting, tags; and the account's Block Public Access (S3
Control), which covers every bucket the account will ever have."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from ..clients import Clients, Unreadable, read
from ..live import LiveTemplate, ref, unreadable
from . import GLOBAL, collector


ACCOUNT_BLOCK = "Live::S3::AccountPublicAccessBlock"
BLOCK_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def fact(answer, pick):
    """`pick(answer)` for an answer, the reason for an Unreadable, None when not configured."""
    if isinstance(answer, Unreadable):
        return unreadable(answer.reason)
    return None if answer is None else pick(answer)


@collector("s3", scope=GLOBAL)
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    s3 = clients("s3", region)
    buckets = read(lambda: s3.list_buckets().get("Buckets", []))
    if isinstance(buckets, Unreadable):
        live.gap(f"S3 buckets could not be listed: {buckets.reason}")
        return
    account_block = read(lambda: clients("s3control", region).get_public_access_block(AccountId=clients.account),
                         missing=("NoSuchPublicAccessBlockConfiguration",))
    if isinstance(account_block, Unreadable):
        settings = {flag: unreadable(account_block.reason) for flag in BLOCK_FLAGS}
    else:
        settings = (account_block or {}).get("PublicAccessBlockConfiguration", {})
    live.add("AccountPublicAccessBlock", ACCOUNT_BLOCK, settings,
             arn=f"arn:aws:s3:::account/{clients.account}", region=region)
    # S3 answers per bucket, ten calls each: read buckets side by side, or one account's buckets
    # are a single serial chain that sets the whole audit's time.
    with ThreadPoolExecutor(max_workers=clients.concurrency) as pool:
        for future in [pool.submit(_bucket, clients, s3, bucket["Name"], live) for bucket in buckets]:
            future.result()


def _bucket(clients: Clients, s3, name: str, live: LiveTemplate) -> None:
    """One bucket and its policy, written into `live`."""
    location = read(lambda: s3.get_bucket_location(Bucket=name).get("LocationConstraint"))
    bucket_region = location if isinstance(location, str) and location else "us-east-1"
    client = clients("s3", bucket_region)
    props = {"BucketName": name}
    props["BucketEncryption"] = fact(
        read(lambda: client.get_bucket_encryption(Bucket=name),
             missing=("ServerSideEncryptionConfigurationNotFoundError",)),
        lambda a: {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": r.get("ApplyServerSideEncryptionByDefault", {}),
             "BucketKeyEnabled": r.get("BucketKeyEnabled", False)}
            for r in a["ServerSideEncryptionConfiguration"]["Rules"]]})
    props["PublicAccessBlockConfiguration"] = fact(
        read(lambda: client.get_public_access_block(Bucket=name), missing=("NoSuchPublicAccessBlockConfiguration",)),
        lambda a: a["PublicAccessBlockConfiguration"])
    versioning = read(lambda: client.get_bucket_versioning(Bucket=name))
    props["VersioningConfiguration"] = fact(versioning, lambda a: {"Status": a.get("Status", "Suspended")})
    props["LifecycleConfiguration"] = fact(
        read(lambda: client.get_bucket_lifecycle_configuration(Bucket=name),
             missing=("NoSuchLifecycleConfiguration",)),
        lambda a: {"Rules": [_lifecycle_rule(r) for r in a.get("Rules", [])]})
    props["LoggingConfiguration"] = fact(
        read(lambda: client.get_bucket_logging(Bucket=name)),
        lambda a: {"DestinationBucketName": a["LoggingEnabled"]["TargetBucket"],
                   "LogFilePrefix": a["LoggingEnabled"].get("TargetPrefix", "")} if a.get("LoggingEnabled") else None)
    props["OwnershipControls"] = fact(
        read(lambda: client.get_bucket_ownership_controls(Bucket=name),
             missing=("OwnershipControlsNotFoundError",)),
        lambda a: {"Rules": a["OwnershipControls"]["Rules"]})
    props["WebsiteConfiguration"] = fact(
        read(lambda: client.get_bucket_website(Bucket=name), missing=("NoSuchWebsiteConfiguration",)),
        lambda a: {"IndexDocument": (a.get("IndexDocument") or {}).get("Suffix", "index.html")})
    props["Tags"] = fact(
        read(lambda: client.get_bucket_tagging(Bucket=name), missing=("NoSuchTagSet",)),
        lambda a: a.get("TagSet", []))
    arn = f"arn:aws:s3:::{name}"
    logical_id = live.add(name, "AWS::S3::Bucket", {k: v for k, v in props.items() if v is not None},
                          arn=arn, region=bucket_region)
    policy = read(lambda: client.get_bucket_policy(Bucket=name), missing=("NoSuchBucketPolicy",))
    if policy is not None:
        document = unreadable(policy.reason) if isinstance(policy, Unreadable) else json.loads(policy["Policy"])
        live.add(f"{name}Policy", "AWS::S3::BucketPolicy", {"Bucket": ref(logical_id), "PolicyDocument": document},
                 arn=arn, region=bucket_region)


def _lifecycle_rule(rule: dict) -> dict:
    """An S3 API lifecycle rule as CloudFormation writes it."""
    out = {"Status": rule.get("Status", "Enabled")}
    noncurrent = rule.get("NoncurrentVersionExpiration") or {}
    if "NoncurrentDays" in noncurrent:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": noncurrent["NoncurrentDays"]}
    expiration = rule.get("Expiration") or {}
    if "Days" in expiration:
        out["ExpirationInDays"] = expiration["Days"]
    if expiration.get("ExpiredObjectDeleteMarker"):
        out["ExpiredObjectDeleteMarker"] = True
    return out
