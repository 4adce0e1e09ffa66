"""Amazon S3: public access, TLS-only policies, encryption, versioned deletion, access logs."""
from __future__ import annotations

from ..engine.checks import (leaves, literal_name, name_form, nested_values, policy_statements, public_statements,
                             require, scoping_condition, tls_policy_outcomes)
from ..engine.findings import unverifiable, violation
from ..engine.values import ABSENT, Unknown, as_bool, as_int, described
from . import rule

BUCKET = "AWS::S3::Bucket"
BUCKET_POLICY = "AWS::S3::BucketPolicy"
SSE = "BucketEncryption.ServerSideEncryptionConfiguration.*.ServerSideEncryptionByDefault"
PUBLIC_ACCESS_BLOCK_FLAGS = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
                             "RestrictPublicBuckets")


def bucket_arn_forms(bucket) -> list[str]:
    """The ways a template can write the bucket's ARN: GetAtt Arn, a Ref built into an ARN, or
    the bucket's literal name."""
    forms = [bucket.ref("Arn").token(), f"arn:aws:s3:::{bucket.ref().token()}"]
    name = literal_name(bucket, "BucketName") or name_form(bucket)
    if name:
        forms.append(f"arn:aws:s3:::{name}")
    return forms


@rule("DP-S3BlockPublicAccess", clause=1, severity="error", types=[BUCKET],
      title="S3 buckets block all public access",
      rationale="Clause 1 denies access to unauthorized addresses. All four Block Public Access "
                "flags stop ACLs and bucket policies from ever exposing the data. Since April 2023 "
                "S3 turns all four on for a new bucket that sets no PublicAccessBlockConfiguration, "
                "so a template without one passes; a configuration that is given must keep all four "
                "true (a flag it leaves out is false). A live bucket without a configuration has "
                "none: it was made before 2023 or had it removed.",
      remediation="s3.Bucket(self, 'Data', block_public_access=s3.BlockPublicAccess.BLOCK_ALL)")
def s3_block_public_access(r, t):
    for path, block in leaves(r, "PublicAccessBlockConfiguration"):
        if isinstance(block, Unknown):
            yield unverifiable(path, f"cannot verify Block Public Access: {block.reason}")
            continue
        if block is ABSENT or block is None:
            if t.live:
                yield violation(path, "the bucket has no Block Public Access configuration, so a public "
                                      "ACL or bucket policy would expose it")
            continue  # S3's default for a new bucket: all four flags on
        off, unknown = [], []
        for flag in PUBLIC_ACCESS_BLOCK_FLAGS:
            for value in nested_values(block, t, flag):
                if isinstance(value, Unknown):
                    unknown.append(f"{flag}: {value.reason}")
                elif as_bool(value) is not True:
                    off.append(flag)
        if off:
            flags = list(dict.fromkeys(off))
            yield violation(path, f"{', '.join(flags)} {'is' if len(flags) == 1 else 'are'} not true (a flag "
                                  "left out of the configuration is false): all four must be on")
        elif unknown:
            yield unverifiable(path, f"cannot verify Block Public Access: {unknown[0]}")


@rule("DP-S3NoPublicAcl", clause=1, severity="error", types=[BUCKET],
      title="S3 buckets have no public canned ACL",
      rationale="PublicRead, PublicReadWrite and AuthenticatedRead open the bucket to anyone "
                "(any AWS account, for AuthenticatedRead).",
      remediation="Remove `access_control`, or use s3.BucketAccessControl.PRIVATE.")
def s3_no_public_acl(r, t):
    public = {"PublicRead", "PublicReadWrite", "AuthenticatedRead"}
    for path, acl in leaves(r, "AccessControl"):
        if isinstance(acl, Unknown):
            yield unverifiable(path, f"AccessControl cannot be verified: {acl.reason}")
        elif acl is ABSENT:
            continue
        elif not isinstance(acl, str):
            yield violation(path, f"AccessControl is {described(acl)}, not a canned ACL name, so it may grant "
                                  f"public access; remove it or use Private")
        elif acl in public:
            yield violation(path, "the canned ACL grants public access")


@rule("DP-S3PolicyNoPublicPrincipal", clause=1, severity="error", types=[BUCKET_POLICY],
      title="S3 bucket policies grant nothing to anonymous principals",
      rationale="An Allow to Principal \"*\" without a scoping condition makes the bucket public.",
      remediation="Name the principals (roles, services with aws:SourceArn) in the statement.")
def s3_policy_no_public_principal(r, t):
    yield from public_statements(r, "PolicyDocument")
    for s in policy_statements(r, "PolicyDocument"):
        # Allow with NotPrincipal grants everyone but the principals it names, anonymous users too.
        if not isinstance(s, tuple) and s.allows and s.not_principals is not None and not scoping_condition(s):
            yield violation(f"{s.path}/NotPrincipal", "allows every principal except those NotPrincipal "
                                                      "names, anonymous users included")


@rule("DP-S3TlsOnly", clause=3, severity="error", types=[BUCKET],
      title="S3 buckets deny requests that do not use TLS",
      rationale="Clause 3: all data in transit over TLS. A bucket policy must deny "
                "aws:SecureTransport=false on the bucket and on its objects.",
      remediation="s3.Bucket(self, 'Data', enforce_ssl=True)")
def s3_tls_only(r, t):
    def targets(bucket):
        forms = bucket_arn_forms(bucket)
        return [forms, [f"{form}/*" for form in forms]]

    yield from tls_policy_outcomes(
        r, (BUCKET_POLICY,), "PolicyDocument", targets,
        "no bucket policy denies non-TLS (aws:SecureTransport=false) access to the bucket and its objects")


@rule("DP-S3Encryption", clause=7, severity="error", types=[BUCKET],
      title="S3 buckets set server-side encryption explicitly",
      rationale="Clause 7: all data at rest encrypted. The template must say how, so that the "
                "choice of key is reviewed rather than left to account defaults.",
      remediation="s3.Bucket(self, 'Data', encryption=s3.BucketEncryption.KMS, encryption_key=key)")
def s3_encryption(r, t):
    yield from require(r, f"{SSE}.SSEAlgorithm", lambda v: v in ("aws:kms", "aws:kms:dsse", "AES256"),
                       "no server-side encryption is configured")


@rule("DP-S3WebsiteHosting", clause=7, severity="error", types=[BUCKET],
      title="S3 buckets do not host public websites",
      rationale="Clause 7: data is never persisted in unsecured public places. Website endpoints "
                "are HTTP-only and public by design.",
      remediation="Serve content through CloudFront with an origin access control instead of "
                  "`website_index_document`.")
def s3_website_hosting(r, t):
    yield from require(r, "WebsiteConfiguration", lambda v: v is ABSENT,
                       "the bucket is configured as a public website")


@rule("DP-S3NoncurrentExpiry", clause=5, severity="error", types=[BUCKET],
      title="Versioned buckets expire noncurrent versions",
      rationale="Clause 5: deleted data must be permanently deleted. In a versioned bucket a "
                "delete only hides the object until its noncurrent versions expire.",
      remediation="s3.Bucket(self, 'Data', versioned=True, lifecycle_rules=[s3.LifecycleRule("
                  "noncurrent_version_expiration=Duration.days(30))])")
def s3_noncurrent_expiry(r, t):
    for _, status in r.values("VersioningConfiguration.Status"):
        if not (isinstance(status, (str, Unknown)) or status is ABSENT):
            status = Unknown(f"Status is {described(status)}, not Enabled or Suspended")
        if isinstance(status, Unknown):
            yield unverifiable("Properties/VersioningConfiguration/Status",
                               f"cannot tell whether versioning is on: {status.reason}")
            return
        if status == "Enabled":
            break
    else:
        return
    verdicts = [_expires_all_noncurrent(item, r.template) if not isinstance(item, Unknown) else item
                for _, item in r.values("LifecycleConfiguration.Rules.*")]
    if any(v is True for v in verdicts):
        return
    unknown = next((v for v in verdicts if isinstance(v, Unknown)), None)
    if unknown is not None:
        yield unverifiable("Properties/LifecycleConfiguration",
                           f"cannot tell whether noncurrent versions expire: {unknown.reason}")
    else:
        wrong = next((v for v in verdicts if isinstance(v, str)), None)
        yield violation("Properties/LifecycleConfiguration",
                        "versioning is on but no bucket-wide lifecycle rule expires every noncurrent version"
                        + (f" ({wrong})" if wrong else ""))


# Rule fields that narrow a lifecycle rule to some objects (the rule is bucket-wide without them).
_RULE_FILTERS = ("Prefix", "TagFilters", "Filter", "ObjectSizeGreaterThan", "ObjectSizeLessThan")


def _expires_all_noncurrent(item, tpl) -> bool | str | Unknown:
    """Does one lifecycle rule expire the noncurrent versions of every object? It must be
    enabled, bucket-wide, set a number of days and keep no NewerNoncurrentVersions (those would
    survive a delete forever). A string says why not: a number of days of the wrong type."""
    def known(value, ok: bool) -> bool | Unknown:
        return value if isinstance(value, Unknown) else ok

    def days(value, key: str) -> bool | str | Unknown:
        # a positive whole number of days (30 or "30"); null, a list or "oops" expires nothing
        if isinstance(value, Unknown) or value is ABSENT:
            return value if isinstance(value, Unknown) else False
        number = as_int(value)
        if number is not None and number >= 1:
            return True
        return f"{key} is {described(value)}, not a number of days"

    facts = [known(s, s in ("Enabled", ABSENT)) for s in nested_values(item, tpl, "Status")]
    for key in _RULE_FILTERS:
        if not isinstance(item, dict) or key in item:  # a rule without the key is not narrowed by it
            facts += [known(v, v in (ABSENT, "", [], {})) for v in nested_values(item, tpl, key)]
    for expiry in nested_values(item, tpl, "NoncurrentVersionExpiration"):
        if expiry is ABSENT:  # the legacy spelling
            facts += [days(d, "NoncurrentVersionExpirationInDays")
                      for d in nested_values(item, tpl, "NoncurrentVersionExpirationInDays")]
            continue
        facts += [days(d, "NoncurrentDays") for d in nested_values(expiry, tpl, "NoncurrentDays")]
        facts += [known(n, n is ABSENT) for n in nested_values(expiry, tpl, "NewerNoncurrentVersions")]
    wrong = next((f for f in facts if isinstance(f, str)), None)
    if wrong is not None:
        return wrong
    if False in facts:
        return False
    return next((f for f in facts if isinstance(f, Unknown)), True)


@rule("DP-S3AccessLogs", clause=9, severity="error", types=[BUCKET],
      title="S3 data buckets write server access logs",
      rationale="Clause 9: logs of access to data. Buckets that receive access logs are exempt "
                "(logging a log bucket into itself loops).",
      remediation="s3.Bucket(self, 'Data', server_access_logs_bucket=log_bucket, "
                  "server_access_logs_prefix='data/')")
def s3_access_logs(r, t):
    if _is_log_target(r):
        return
    yield from require(r, "LoggingConfiguration", lambda v: isinstance(v, dict),
                       "server access logging is off")


def _is_log_target(bucket) -> bool:
    """Does another bucket send its access logs here, or does the bucket say it takes logs?"""
    if any(v == "LogDeliveryWrite" for _, v in bucket.values("AccessControl")):
        return True
    targets, names = _log_targets(bucket.template.app)
    return bucket in targets or literal_name(bucket, "BucketName") in names


def _log_targets(app) -> tuple[set, set[str]]:
    """The buckets of the app that some bucket sends its access logs to, and the literal names
    they are sent to: read once for all buckets."""
    found = app.cache.get("s3_log_targets")
    if found is None:
        targets, names = set(), set()
        for other in app.of_type(BUCKET):
            for _, dest in other.values("LoggingConfiguration.DestinationBucketName"):
                target = other.template.resource_of(dest, BUCKET)
                if target is not None:
                    targets.add(target)
            name = literal_name(other, "LoggingConfiguration.DestinationBucketName")
            if name:
                names.add(name)
        found = app.cache["s3_log_targets"] = (targets, names)
    return found
