"""The non-compliant CDK app behind tests/data/cdk/insecure.out (escape hatch included)."""
import aws_cdk as cdk
from aws_cdk import aws_s3 as s3, aws_ec2 as ec2, aws_iam as iam, aws_sqs as sqs
app = cdk.App()
st = cdk.Stack(app, "Bad")
b = s3.Bucket(st, "Plain")
b.node.default_child.add_property_override("PublicAccessBlockConfiguration.BlockPublicPolicy", False)
vpc = ec2.Vpc(st, "Vpc", max_azs=2)
sg = ec2.SecurityGroup(st, "Sg", vpc=vpc)
sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(22))
r = iam.Role(st, "R", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
r.add_to_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
sqs.Queue(st, "Q")
app.synth()
