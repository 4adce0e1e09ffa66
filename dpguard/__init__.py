"""dpguard: the Data Protection Policy as code for AWS CloudFormation and CDK.

`dpguard.enforce(app)` adopts the whole policy in a CDK app; `dpguard.acknowledge(...)` records
an acknowledged violation. Both need aws-cdk-lib; `dpguard scan` does not."""
__version__ = "0.1.0"


def _cdk():
    try:
        from . import cdk
    except ModuleNotFoundError as e:
        raise ImportError(f"dpguard's CDK integration needs aws-cdk-lib and cdk-nag ({e}): "
                          "pip install 'dpguard[cdk]'") from None
    return cdk


def enforce(scope, **options):
    """See dpguard.cdk.enforce: the policy for every template of an App or Stage, at synth."""
    return _cdk().enforce(scope, **options)


def acknowledge(scope, rule_id, reason, **options):
    """See dpguard.cdk.acknowledge: acknowledge one rule on a construct, with a reason."""
    return _cdk().acknowledge(scope, rule_id, reason, **options)


def synth(app):
    """See dpguard.cdk.synth: app.synth() that ends a policy failure with one line, exit 1."""
    return _cdk().synth(app)
