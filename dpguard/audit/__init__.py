"""`dpguard audit`: the policy against what is really deployed. Collectors (boto3) write live
resources as CloudFormation; the engine's catalogue judges them; findings carry ARN, region and
account."""
