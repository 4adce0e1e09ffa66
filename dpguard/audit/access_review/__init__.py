"""`dpguard access-review`: the quarterly access review of clause 2 ("We will regularly review
the list of people and services with access to private information ... at least quarterly, and
remove accounts that no longer require access"), built from what `dpguard audit` reads.

The iam and kms collectors run as for the audit; the review is then built from the live
templates (`AuditResult.app`) with the engine's policy helpers and the live rules' date helpers,
so its "unused" and "old key" verdicts are those of DP-PrincipalUnused and DP-IamAccessKeyAge:

* principals: every IAM user and role, with creation, last use, console password and MFA,
  access keys, attached and inline policies, groups, the data keys it can decrypt;
* keys: for every customer-managed KMS key, who can decrypt with it: principals named by its key
  policy and its grants, the account root meaning "any IAM principal of that account whose IAM
  policy allows it", expanded to the users and roles whose identity policies do;
* flags: what to remove or fix, each with its reason;
* gaps: what the review could not see (nothing unread is reported as fine).

Judgements that cannot be certain are never dropped: a principal whose access depends on a
condition, a policy that could not be read, a permissions boundary or a Deny that may or may not
apply is listed as "may decrypt (conditional)" with the reasons. Only an unconditional Deny that
certainly matches removes a principal, and it is then listed among the key's `denied`.

Two reads go beyond the audit's collectors: iam:ListMFADevices for users with a console password
and kms:ListGrants for each key (see EXTRA_ACTIONS); where they are denied, MFA or grants are
reported as gaps.

The package: records.py (what the review lists), collection.py (reading AWS), judgment.py
(building the review from what was read), command.py (the CLI command); the writers are
dpguard/output/access_review_writers.py.
"""
from .collection import COLLECTORS, run_review, supplement
from .command import command
from .judgment import build_review, parse_principal
from .records import CAN, EXTRA_ACTIONS, MAY, Review

__all__ = ["CAN", "COLLECTORS", "MAY", "EXTRA_ACTIONS", "Review", "build_review", "command", "parse_principal",
           "run_review", "supplement"]
