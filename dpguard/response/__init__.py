"""The policy's duties with deadlines, as Lambda functions the baseline deploys (clauses 4, 5, 7).

- incidents: security events (GuardDuty, CloudTrail alarms, Security Hub) become recorded
  incidents with each party's notification deadline; `escalation` chases the deadlines.
- data_requests: a user's deletion or return request, answered within 72 hours with a
  KMS-signed written confirmation.
- secrets: an exposed secret is regenerated, its exposed version revoked, and its owner told.

This package needs only the standard library and boto3 (the Lambda runtime has both): it is the
code the functions run, and the same code `dpguard secret-exposed` runs on an operator's machine.
Clients are passed in, so tests drive it with moto."""
