"""An app team's CDK app with one violation, for the `cdk synth` CLI test: an unencrypted queue
in a nested stack of a stack inside a Stage."""
import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs

import dpguard

app = cdk.App()
stage = cdk.Stage(app, "Prod")
stack = cdk.Stack(stage, "Orders")
nested = cdk.NestedStack(stack, "Workers")
queue = sqs.Queue(nested, "Jobs", enforce_ssl=True)
cdk.Tags.of(queue).add("data-classification", "internal")
cdk.Tags.of(queue).add("data-owner", "orders-team")
dpguard.enforce(app, packs=[])
dpguard.synth(app)
