"""Data governance: every data store says what it holds and who owns it; confidential data is
encrypted with keys we control."""
from __future__ import annotations

from ..engine.checks import customer_managed_key, first, leaves, tag_values
from ..engine.findings import unverifiable, violation
from ..engine.values import ABSENT, Unknown, alternatives
from . import rule

CLASSIFICATIONS = ("public", "internal", "confidential", "restricted")
NO_CMK_NEEDED = ("public", "internal")  # every other value, valid or not, needs a CMK (fail closed)

# Data store type -> (where its tags are, where its KMS key is).
DATA_STORES: dict[str, tuple[str, str | None]] = {
    "AWS::S3::Bucket": ("Tags", "BucketEncryption.ServerSideEncryptionConfiguration.*."
                                "ServerSideEncryptionByDefault.KMSMasterKeyID"),
    "AWS::RDS::DBInstance": ("Tags", "KmsKeyId"),
    "AWS::RDS::DBCluster": ("Tags", "KmsKeyId"),
    "AWS::DocDB::DBCluster": ("Tags", "KmsKeyId"),
    "AWS::Neptune::DBCluster": ("Tags", "KmsKeyId"),
    "AWS::DynamoDB::Table": ("Tags", "SSESpecification.KMSMasterKeyId"),
    # CDK's TableV2: tags and keys belong to each replica.
    "AWS::DynamoDB::GlobalTable": ("Replicas.*.Tags", "Replicas.*.SSESpecification.KMSMasterKeyId"),
    "AWS::EFS::FileSystem": ("FileSystemTags", "KmsKeyId"),
    "AWS::ElastiCache::ReplicationGroup": ("Tags", "KmsKeyId"),
    "AWS::ElastiCache::ServerlessCache": ("Tags", "KmsKeyId"),
    "AWS::OpenSearchService::Domain": ("Tags", "EncryptionAtRestOptions.KmsKeyId"),
    "AWS::Elasticsearch::Domain": ("Tags", "EncryptionAtRestOptions.KmsKeyId"),
    "AWS::Redshift::Cluster": ("Tags", "KmsKeyId"),
    "AWS::SQS::Queue": ("Tags", "KmsMasterKeyId"),
    "AWS::Kinesis::Stream": ("Tags", "StreamEncryption.KeyId"),
    "AWS::EC2::Volume": ("Tags", "KmsKeyId"),
    "AWS::Backup::BackupVault": ("BackupVaultTags", "EncryptionKeyArn"),
}


# Data store type -> its tags' property path, as findings name it.
TAGS_PATHS = {rtype: "Properties/" + tags.replace(".", "/") for rtype, (tags, _) in DATA_STORES.items()}


def classification(r) -> list:
    """Every value the resource's data-classification tag may have (ABSENT if untagged)."""
    return _tag(r, "data-classification")


def _tag(r, key: str) -> list:
    """tag_values() of the data store's tag `key`. A plain list of tags, the shape CDK writes, is
    read once for the three rules that ask (see _plain_tags); any other shape goes to tag_values."""
    table = r.cache.get("governance_tags", False)
    if table is False:
        table = r.cache["governance_tags"] = _plain_tags(r)
    if table is None:
        return tag_values(r, key, DATA_STORES[r.type][0])
    return list(table.get(key, [ABSENT]))


def _plain_tags(r) -> dict[str, list] | None:
    """Tag key -> every value its entries may have, when the tags are one list (no Fn::If around
    it) whose entries are mappings with a literal Key: what tag_values would give for each key,
    with ABSENT for a key no entry has. None for any other shape."""
    found = r.values(DATA_STORES[r.type][0])
    if len(found) != 1:
        return None
    tags = found[0][1]
    if tags is ABSENT:
        return {}
    if type(tags) is not list:
        return None
    table: dict[str, list] = {}
    for item in tags:
        if type(item) is not dict or type(item.get("Key")) is not str:
            return None  # an entry in Fn::If, AWS::NoValue, a key by Ref: tag_values judges it
        table.setdefault(item["Key"], []).extend(alternatives(item.get("Value", ABSENT), r.template))
    return table


def classification_requires_cmk(r) -> bool | Unknown:
    """Confidential and restricted data need a customer-managed key. Unclassified data, and a
    value that is not a classification ("Confidential", "pii"), is treated as confidential: the
    policy fails closed."""
    values = classification(r)
    unknown = next((v for v in values if isinstance(v, Unknown)), None)
    if any(not isinstance(v, Unknown) and v not in NO_CMK_NEEDED for v in values):
        return True
    return unknown if unknown is not None else False


@rule("DP-DataClassificationTag", clause=6, severity="error", types=list(DATA_STORES),
      title="Data stores carry a data-classification tag",
      rationale="Clause 6 asks for documented handling of information assets. The tag "
                "`data-classification` (public, internal, confidential or restricted) says which "
                "handling rules apply and drives the key and retention rules.",
      remediation="Tags.of(bucket).add('data-classification', 'confidential')")
def data_classification_tag(r, t):
    path = TAGS_PATHS[r.type]
    for value in classification(r):
        if isinstance(value, Unknown):
            yield unverifiable(path, f"the data-classification tag cannot be known: {value.reason}")
        elif value is ABSENT:
            yield violation(path, "the data store has no data-classification tag")
        elif value not in CLASSIFICATIONS:
            yield violation(path, f"data-classification {value!r} is not one of {', '.join(CLASSIFICATIONS)}")


@rule("DP-DataOwnerTag", clause=6, severity="error", types=list(DATA_STORES),
      title="Data stores carry a data-owner tag",
      rationale="Clause 6: every information asset has an accountable owner, who answers access "
                "reviews (clause 2) and deletion requests (clause 5).",
      remediation="Tags.of(bucket).add('data-owner', 'payments-team')")
def data_owner_tag(r, t):
    path = TAGS_PATHS[r.type]
    for value in _tag(r, "data-owner"):
        if isinstance(value, Unknown):
            yield unverifiable(path, f"the data-owner tag cannot be known: {value.reason}")
        elif value is ABSENT or not str(value).strip():
            yield violation(path, "the data store has no data-owner tag")


@rule("DP-ConfidentialDataCmk", clause=7, severity="error",
      types=[t for t, (_, key) in DATA_STORES.items() if key],
      title="Confidential and restricted data stores use a customer-managed KMS key",
      rationale="Clause 7: cryptographic material is accessible only to our processes. Keys we "
                "create and govern (rotation, key policy) meet that; AWS-owned and AWS-managed "
                "keys do not. Untagged stores are treated as confidential.",
      remediation="key = kms.Key(self, 'DataKey', enable_key_rotation=True)\n"
                  "s3.Bucket(self, 'Data', encryption=s3.BucketEncryption.KMS, encryption_key=key)")
def confidential_data_cmk(r, t):
    if r.type == "AWS::RDS::DBInstance" and first(r, "DBClusterIdentifier") is not ABSENT:
        return  # an Aurora instance stores its data in the cluster, judged there
    key_path = DATA_STORES[r.type][1]
    problems = []
    for path, key in leaves(r, key_path):
        managed = customer_managed_key(r, key)
        if managed is not True:
            problems.append((path, managed))
    if not problems:
        return
    needs = classification_requires_cmk(r)
    if needs is False:
        return
    for path, managed in problems:
        if isinstance(managed, Unknown):
            yield unverifiable(path, f"cannot tell whether the key is customer managed: {managed.reason}")
        elif isinstance(needs, Unknown):
            yield unverifiable(path, f"no customer-managed key, and the data classification cannot "
                                     f"be known: {needs.reason}")
        else:
            yield violation(path, "confidential, restricted or unclassified data is not encrypted "
                                  "with a customer-managed KMS key")
