"""The compliant CDK app behind tests/data/cdk/secure.out (synthesized with aws-cdk-lib 2.275:
`CDK_OUTDIR=secure.out python secure_app.py`)."""
import aws_cdk as cdk
from aws_cdk import (Duration, Tags, aws_ec2 as ec2, aws_kms as kms, aws_s3 as s3,
                     aws_sqs as sqs, aws_sns as sns, aws_logs as logs,
                     aws_lambda as lambda_, aws_rds as rds, aws_cloudwatch as cw,
                     aws_cloudwatch_actions as cw_actions)


class Data(cdk.NestedStack):
    def __init__(self, scope, id, key, **kw):
        super().__init__(scope, id, **kw)
        q = sqs.Queue(self, "Jobs", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True)
        Tags.of(q).add("data-classification", "confidential")
        Tags.of(q).add("data-owner", "jobs")


class Secure(cdk.Stack):
    def __init__(self, scope, id, **kw):
        super().__init__(scope, id, **kw)
        key = kms.Key(self, "DataKey", enable_key_rotation=True)
        vpc = ec2.Vpc(self, "Vpc", max_azs=2, restrict_default_security_group=True,
                      subnet_configuration=[ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)],
                      flow_logs={"all": ec2.FlowLogOptions(destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                          logs.LogGroup(self, "FlowLogs", encryption_key=key, retention=logs.RetentionDays.ONE_YEAR)))})
        logs_bucket = s3.Bucket(self, "AccessLogs", encryption=s3.BucketEncryption.S3_MANAGED,
                                block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
                                object_ownership=s3.ObjectOwnership.OBJECT_WRITER)
        data = s3.Bucket(self, "Data", encryption=s3.BucketEncryption.KMS, encryption_key=key,
                         block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True, versioned=True,
                         lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30))],
                         server_access_logs_bucket=logs_bucket, server_access_logs_prefix="data/")
        for b, c in ((logs_bucket, "internal"), (data, "confidential")):
            Tags.of(b).add("data-classification", c)
            Tags.of(b).add("data-owner", "platform")
        topic = sns.Topic(self, "Alerts", master_key=key, enforce_ssl=True)
        fn = lambda_.Function(self, "Fn", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler",
                              code=lambda_.Code.from_inline("def handler(e, c): return 1"),
                              log_group=logs.LogGroup(self, "FnLogs", encryption_key=key, retention=logs.RetentionDays.ONE_MONTH),
                              environment={"BUCKET": data.bucket_name})
        data.grant_read(fn)
        alarm = cw.Alarm(self, "Errors", metric=fn.metric_errors(), threshold=1, evaluation_periods=1)
        alarm.add_alarm_action(cw_actions.SnsAction(topic))
        db = rds.DatabaseInstance(self, "Db", engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16),
                                  vpc=vpc, vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
                                  storage_encrypted=True, storage_encryption_key=key, iam_authentication=True,
                                  credentials=rds.Credentials.from_generated_secret("appadmin", encryption_key=key),
                                  publicly_accessible=False, deletion_protection=True,
                                  parameters={"rds.force_ssl": "1"})
        db.add_rotation_single_user()
        Tags.of(db).add("data-classification", "confidential")
        Tags.of(db).add("data-owner", "platform")
        Data(self, "Nested", key=key)


app = cdk.App()
Secure(app, "Secure")
stage = cdk.Stage(app, "Prod")
Secure(stage, "Secure")
app.synth()
