"""dpguard: the Data Protection Policy as code for AWS CloudFormation and CDK.

`dpguard.enforce(app)` adopts the whole policy in a CDK app; `dpguard.acknowledge(...)` records
an acknowledged violation. Both need aws-cdk-lib; `dpguard scan` does not."""
__version__ = "0.1.0"


def enforce(scope, **options):
    """See dpguard.cdk.enforce: the policy for every template of an App or Stage, at synth."""
    from .cdk import enforce as _enforce
    return _enforce(scope, **options)


def acknowledge(scope, rule_id, reason, **options):
    """See dpguard.cdk.acknowledge: acknowledge one rule on a construct, with a reason."""
    from .cdk import acknowledge as _acknowledge
    return _acknowledge(scope, rule_id, reason, **options)


def synth(app):
    """See dpguard.cdk.synth: app.synth() that ends a policy failure with one line, exit 1."""
    from .cdk import synth as _synth
    return _synth(app)
