"""CloudTrail trails, each in its home region, with whether it is logging right now.

Shape, as CloudFormation writes it: `AWS::CloudTrail::Trail` {TrailName, S3BucketName,
S3KeyPrefix, SnsTopicName, IsMultiRegionTrail, IncludeGlobalServiceEvents,
EnableLogFileValidation, KMSKeyId, CloudWatchLogsLogGroupArn, CloudWatchLogsRoleArn,
IsOrganizationTrail, IsLogging}. IsLogging comes from GetTrailStatus: a trail someone stopped is
caught by DP-CloudTrailLogging. S3BucketName is the bucket's name, which the engine follows to the
`AWS::S3::Bucket` of that name that the s3 collector writes (any account and region of the same
audit), so DP-CloudTrailBucketProtected judges the real bucket; a bucket the audit did not read
(another account's log archive) is unverifiable.

Shadow trails (the copies of a multi-region or organization trail that other regions and member
accounts see) are left out: each trail is judged once, in its home region and owner account.
A trail deleted between DescribeTrails and GetTrailStatus is skipped.
"""
from __future__ import annotations

from ..clients import Clients, Unreadable, read
from ..live import LiveTemplate, unreadable
from . import collector

GONE = ("TrailNotFoundException",)


@collector("cloudtrail")
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    cloudtrail = clients("cloudtrail", region)
    trails = read(lambda: cloudtrail.describe_trails(includeShadowTrails=False).get("trailList", []))
    if isinstance(trails, Unreadable):
        live.gap(f"CloudTrail trails in {region} could not be listed: {trails.reason}")
        return
    for trail in trails:
        if trail.get("HomeRegion", region) != region:
            continue
        arn = trail["TrailARN"]
        status = read(lambda: cloudtrail.get_trail_status(Name=arn), missing=GONE)
        if status is None:
            continue  # deleted since the listing
        props = {
            "TrailName": trail.get("Name"),
            "S3BucketName": trail.get("S3BucketName"),
            "S3KeyPrefix": trail.get("S3KeyPrefix"),
            "SnsTopicName": trail.get("SnsTopicARN"),
            "IsMultiRegionTrail": bool(trail.get("IsMultiRegionTrail")),
            "IncludeGlobalServiceEvents": bool(trail.get("IncludeGlobalServiceEvents")),
            "EnableLogFileValidation": bool(trail.get("LogFileValidationEnabled")),
            "KMSKeyId": trail.get("KmsKeyId"),
            "CloudWatchLogsLogGroupArn": trail.get("CloudWatchLogsLogGroupArn"),
            "CloudWatchLogsRoleArn": trail.get("CloudWatchLogsRoleArn"),
            "IsOrganizationTrail": bool(trail.get("IsOrganizationTrail")),
            "IsLogging": unreadable(status.reason) if isinstance(status, Unreadable) else bool(status.get("IsLogging")),
        }
        live.add(trail.get("Name") or arn, "AWS::CloudTrail::Trail",
                 {k: v for k, v in props.items() if v is not None}, arn=arn)
