"""dpguard: the Data Protection Policy as code for AWS CloudFormation and CDK."""
__version__ = "0.1.0"
