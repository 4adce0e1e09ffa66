"""Block, file, backup, container and streaming storage: EBS, EFS, AWS Backup, ECR, Kinesis and
Firehose. Encrypted at rest (clause 7), TLS-only file systems (clause 3).

Tags and customer-managed keys for confidential data are judged in governance.py.
"""
from __future__ import annotations

from typing import Any, Iterator

from ..engine.checks import (customer_managed_key, denies_insecure_transport, follow, leaves,
                             policy_documents, require)
from ..engine.findings import Outcome, unverifiable, violation
from ..engine.values import ABSENT, Unknown, alternatives, as_bool
from . import rule

VOLUME = "AWS::EC2::Volume"
INSTANCE = "AWS::EC2::Instance"
LAUNCH_TEMPLATE = "AWS::EC2::LaunchTemplate"
LAUNCH_CONFIGURATION = "AWS::AutoScaling::LaunchConfiguration"
EFS = "AWS::EFS::FileSystem"
BACKUP_VAULT = "AWS::Backup::BackupVault"
ECR = "AWS::ECR::Repository"
KINESIS = "AWS::Kinesis::Stream"
FIREHOSE = "AWS::KinesisFirehose::DeliveryStream"


# ---------------------------------------------------------------- EBS

@rule("DP-EbsEncrypted", clause=7, severity="error", types=[VOLUME],
      title="EBS volumes are encrypted",
      rationale="Clause 7: all data at rest encrypted. A volume is encrypted only when Encrypted "
                "is true, or when it is made from an encrypted snapshot, or when the account turns "
                "on EBS encryption by default; the last two are invisible in the template, so a "
                "volume from a snapshot without Encrypted is unverifiable and any other volume "
                "without it is a violation.",
      remediation="ec2.Volume(self, 'Data', availability_zone=az, size=Size.gibibytes(100), "
                  "encrypted=True, encryption_key=key)")
def ebs_encrypted(r, t):
    yield from _ebs_outcomes(leaves(r, "Encrypted"), any(v is not ABSENT for _, v in leaves(r, "SnapshotId")))


def _ebs_outcomes(encrypted: list[tuple[str, Any]], from_snapshot: bool) -> Iterator[Outcome]:
    for path, value in encrypted:
        if isinstance(value, Unknown):
            yield unverifiable(path, f"cannot verify that the volume is encrypted: {value.reason}")
        elif as_bool(value) is True:
            continue
        elif value is ABSENT and from_snapshot:
            yield unverifiable(path, "the volume takes its encryption from a snapshot dpguard cannot "
                                     "see; set Encrypted true")
        elif value is ABSENT:
            yield violation(path, "the volume is not encrypted (Encrypted is not set); set it to true "
                                  "rather than rely on the account's EBS default")
        else:
            yield violation(path, "the volume is not encrypted")


def _mapping_outcomes(r, mappings_path: str) -> tuple[list[Outcome], bool]:
    """Outcomes for every EBS block device mapping at `mappings_path`, and whether there is any
    EBS mapping at all (instance-store and NoDevice entries are skipped)."""
    outcomes: list[Outcome] = []
    found = False
    for path, mapping in r.values(f"{mappings_path}.*"):
        if isinstance(mapping, Unknown):
            outcomes.append(unverifiable(path, f"a block device mapping cannot be read: {mapping.reason}"))
            found = True
            continue
        if mapping is ABSENT:
            continue
        if not isinstance(mapping, dict) or "Ebs" not in mapping:
            continue
        found = True
        outcomes.extend(_ebs_mapping(r, mapping, f"{path}/Ebs"))
    return outcomes, found


def _ebs_mapping(r, mapping: dict, ebs_path: str) -> Iterator[Outcome]:
    for ebs in alternatives(mapping["Ebs"], r.template):
        if isinstance(ebs, Unknown):
            yield unverifiable(ebs_path, f"the EBS settings cannot be read: {ebs.reason}")
            continue
        if ebs is ABSENT:
            continue
        if not isinstance(ebs, dict):
            yield unverifiable(ebs_path, "the EBS settings are not a mapping")
            continue
        encrypted = [(f"{ebs_path}/Encrypted", v)
                     for v in alternatives(ebs.get("Encrypted", ABSENT), r.template)]
        snapshot = any(v is not ABSENT for v in alternatives(ebs.get("SnapshotId", ABSENT), r.template))
        yield from _ebs_outcomes(encrypted, snapshot)


@rule("DP-Ec2BlockDevicesEncrypted", clause=7, severity="error",
      types=[INSTANCE, LAUNCH_TEMPLATE, LAUNCH_CONFIGURATION],
      title="EC2 instances and launch templates encrypt their EBS volumes",
      rationale="Clause 7: all data at rest encrypted. Every EBS block device mapping must set "
                "Encrypted true. An instance or launch configuration without any EBS mapping gets "
                "its root volume from the AMI, encrypted only if the AMI's snapshot or the account "
                "default says so, which the template does not show: map the root device with "
                "Encrypted true. A launch template without an AMI is a fragment completed by its "
                "user, so only the mappings it has are judged.",
      remediation="ec2.Instance(self, 'Host', ..., block_devices=[ec2.BlockDevice(device_name='/dev/xvda',\n"
                  "    volume=ec2.BlockDeviceVolume.ebs(30, encrypted=True))])")
def ec2_block_devices_encrypted(r, t):
    base = "LaunchTemplateData.BlockDeviceMappings" if r.type == LAUNCH_TEMPLATE else "BlockDeviceMappings"
    outcomes, found = _mapping_outcomes(r, base)
    yield from outcomes
    if found:
        if not _maps_root(r, base) and not _image_elsewhere(r):
            yield unverifiable(f"Properties/{base.replace('.', '/')}",
                               "no mapping is for a usual root device (/dev/xvda, /dev/sda1), so the "
                               "root volume's encryption is left to the AMI and the account default; "
                               "map the root device with Encrypted true")
        return
    if r.type == LAUNCH_TEMPLATE:
        if all(v is ABSENT for _, v in leaves(r, "LaunchTemplateData.ImageId")):
            return
    elif r.type == INSTANCE:
        maps = _launch_template_maps_devices(r)
        if maps is True:
            return
        if isinstance(maps, Unknown):
            yield unverifiable("Properties/LaunchTemplate", "the instance maps no EBS devices itself and "
                                                            f"its launch template cannot be read: {maps.reason}")
            return
    yield violation(f"Properties/{base.replace('.', '/')}",
                    "no EBS block device mapping sets Encrypted, so the root volume's encryption is "
                    "left to the AMI and the account default; map the root device with Encrypted true")


ROOT_DEVICES = {"/dev/xvda", "/dev/sda1", "/dev/sda", "xvda", "sda1"}


def _maps_root(r, mappings_path: str) -> bool:
    """Does an EBS mapping name a usual root device (or a device chosen at deploy time)?"""
    for _, mapping in r.values(f"{mappings_path}.*"):
        if isinstance(mapping, Unknown):
            return True  # reported as unreadable already
        if isinstance(mapping, dict) and "Ebs" in mapping:
            for name in alternatives(mapping.get("DeviceName", ABSENT), r.template):
                if isinstance(name, Unknown) or (isinstance(name, str) and name.strip() in ROOT_DEVICES):
                    return True
    return False


def _image_elsewhere(r) -> bool:
    """A launch template without an AMI is completed by its user; an instance launched from a
    launch template gets its root mapping from there (judged on the launch template)."""
    if r.type == LAUNCH_TEMPLATE:
        return all(v is ABSENT for _, v in leaves(r, "LaunchTemplateData.ImageId"))
    if r.type == INSTANCE:
        return any(v is not ABSENT for _, v in leaves(r, "LaunchTemplate"))
    return False


def _launch_template_maps_devices(instance) -> bool | Unknown:
    """Does the instance's launch template map EBS devices? Those mappings are judged on the
    launch template itself. Unknown when the template is not in the scanned templates."""
    refs = [v for path in ("LaunchTemplate.LaunchTemplateId", "LaunchTemplate.LaunchTemplateName")
            for _, v in leaves(instance, path) if v is not ABSENT]
    for ref in refs:
        if isinstance(ref, Unknown):
            return ref
        target = follow(instance, ref, LAUNCH_TEMPLATE)
        if target is None:
            return Unknown("the launch template is not in the scanned templates")
        if not _mapping_outcomes(target, "LaunchTemplateData.BlockDeviceMappings")[1]:
            return False
    return bool(refs)


# ---------------------------------------------------------------- EFS

@rule("DP-EfsEncrypted", clause=7, severity="error", types=[EFS],
      title="EFS file systems are encrypted",
      rationale="Clause 7: all data at rest encrypted. CloudFormation creates EFS file systems "
                "unencrypted unless Encrypted is true, and it cannot be changed later.",
      remediation="efs.FileSystem(self, 'Files', vpc=vpc, encrypted=True, kms_key=key)")
def efs_encrypted(r, t):
    yield from require(r, "Encrypted", lambda v: as_bool(v) is True, "the file system is not encrypted")


@rule("DP-EfsTlsOnly", clause=3, severity="error", types=[EFS],
      title="EFS file systems refuse mounts without TLS",
      rationale="Clause 3: all data in transit over TLS, unsecured channels disabled. TLS is a "
                "client mount option; only a file system policy that denies access when "
                "aws:SecureTransport is false makes the server refuse plain NFS.",
      remediation="efs.FileSystem(self, 'Files', ..., file_system_policy=iam.PolicyDocument(statements=[\n"
                  "    iam.PolicyStatement(effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()], actions=['*'],\n"
                  "        conditions={'Bool': {'aws:SecureTransport': 'false'}})]))")
def efs_tls_only(r, t):
    message = "no file system policy denies access without TLS (aws:SecureTransport false)"
    variants = list(policy_documents(r, "FileSystemPolicy"))
    if not variants or any(v is ABSENT for _, v in leaves(r, "FileSystemPolicy")):
        yield violation("Properties/FileSystemPolicy", message)
        return
    for path, statements in variants:
        if isinstance(statements, Unknown):
            yield unverifiable(path, f"the file system policy cannot be read: {statements.reason}")
        elif not any(denies_insecure_transport(s) for s in statements):
            unknown = next((s.unknown for s in statements if s.unknown), None)
            if unknown is not None:
                yield unverifiable(path, f"{message} (cannot verify: {unknown.reason})")
            else:
                yield violation(path, message)


# ---------------------------------------------------------------- Backup, ECR

@rule("DP-BackupVaultCmk", clause=7, severity="error", types=[BACKUP_VAULT],
      title="Backup vaults encrypt with a customer-managed KMS key",
      rationale="Clause 7: the cryptographic material is accessible only to our processes. A vault "
                "holds copies of every store it protects, whatever their classification, so it "
                "needs a key we govern; without EncryptionKeyArn AWS Backup uses the AWS managed "
                "key aws/backup, whose policy we cannot restrict.",
      remediation="backup.BackupVault(self, 'Vault', encryption_key=key)")
def backup_vault_cmk(r, t):
    for path, value in leaves(r, "EncryptionKeyArn"):
        managed = customer_managed_key(r, value)
        if isinstance(managed, Unknown):
            yield unverifiable(path, "cannot tell whether the vault key is customer managed: "
                                     f"{managed.reason}")
        elif managed is not True:
            yield violation(path, "the vault is not encrypted with a customer-managed KMS key")


@rule("DP-EcrKmsEncryption", clause=7, severity="warning", types=[ECR],
      title="ECR repositories encrypt images with KMS",
      rationale="Clause 7: images are always encrypted at rest (AES256 by default), but only a KMS "
                "key puts the key and its use under our control and in CloudTrail. Advisory: "
                "images rarely hold customer data.",
      remediation="ecr.Repository(self, 'Repo', encryption=ecr.RepositoryEncryption.KMS, encryption_key=key)")
def ecr_kms_encryption(r, t):
    yield from require(r, "EncryptionConfiguration.EncryptionType", lambda v: v in ("KMS", "KMS_DSSE"),
                       "the repository uses the default AES256 encryption, not a KMS key")


# ---------------------------------------------------------------- Kinesis, Firehose

@rule("DP-KinesisEncrypted", clause=7, severity="error", types=[KINESIS],
      title="Kinesis data streams are encrypted with KMS",
      rationale="Clause 7: all data at rest encrypted. A stream stores records unencrypted unless "
                "StreamEncryption sets EncryptionType KMS.",
      remediation="kinesis.Stream(self, 'Events', encryption=kinesis.StreamEncryption.KMS, encryption_key=key)")
def kinesis_encrypted(r, t):
    yield from require(r, "StreamEncryption.EncryptionType", lambda v: v == "KMS",
                       "the stream is not encrypted at rest (StreamEncryption KMS is not set)")


@rule("DP-FirehoseEncrypted", clause=7, severity="error", types=[FIREHOSE],
      title="Firehose delivery streams encrypt buffered data with a customer-managed key",
      rationale="Clause 7: all data at rest encrypted, with material only our processes can use. "
                "A Direct PUT delivery stream buffers records for up to a day; server-side "
                "encryption is off unless configured, and its other choice, AWS_OWNED_CMK, is a key "
                "we cannot see or audit. Streams that read from Kinesis or MSK are judged on their "
                "source.",
      remediation="firehose.DeliveryStream(self, 'Delivery', ..., encryption=firehose.StreamEncryption."
                  "customer_managed_key(key))")
def firehose_encrypted(r, t):
    types = [v for _, v in leaves(r, "DeliveryStreamType")]
    if not any(v in (ABSENT, "DirectPut") or isinstance(v, Unknown) for v in types):
        return
    unknown_type = next((v for v in types if isinstance(v, Unknown)), None)
    direct_put = any(v in (ABSENT, "DirectPut") for v in types)
    for outcome in require(r, "DeliveryStreamEncryptionConfigurationInput.KeyType",
                           lambda v: v == "CUSTOMER_MANAGED_CMK",
                           "buffered records are not encrypted with a customer-managed KMS key"):
        if outcome.status == "violation" and unknown_type is not None and not direct_put:
            # only a Direct PUT stream needs its own encryption, and the type is not known
            yield unverifiable(outcome.property_path, f"{outcome.message} (cannot verify: the stream "
                                                      f"type is unknown: {unknown_type.reason})")
        else:
            yield outcome
