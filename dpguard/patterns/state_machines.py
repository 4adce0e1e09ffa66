"""Step Functions state machines that meet the policy by construction."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms, aws_stepfunctions as sfn
from constructs import Construct

from .acks import HIPAA, NIST_R4, NIST_R5, PCI, acknowledge_in_packs
from .guards import acknowledge_star_only_actions
from .logs import EncryptedLogGroup
from .names import physical_name

STAR_ONLY_REASON = ("CloudWatch Logs log delivery and X-Ray trace upload, which CDK grants a state machine "
                    "that logs and traces, support no resource-level permissions; every other action of the "
                    "role names its resources (checked at synth)")


class SecureStateMachine(sfn.StateMachine):
    """A state machine compliant by default:

    * every execution event logged (Level ALL) to its own log group `<id>Logs`, encrypted with
      `log_key` and kept `log_retention_days` days (clauses 7, 9); the payloads go into the logs
      only with `include_execution_data=True`, since they copy personal data there;
    * X-Ray tracing on (clause 9);
    * its definition and execution data encrypted with the customer-managed `encryption_key`
      (clause 7), which the role may use for this state machine only;
    * its own role, with what CDK derives from the tasks of the definition and nothing else
      (clause 8): grant more on `.role`, naming the resources. Log delivery and X-Ray need
      Resource "*" (AWS offers nothing narrower); that is acknowledged for cdk-nag's IAM5, and a
      synth-time check fails the app if any other action on the role gets Resource "*".

    Takes `definition_body` (e.g. `sfn.DefinitionBody.from_chainable(chain)`), and
    `state_machine_type` (STANDARD by default), `timeout`, `state_machine_name` (by default one
    made from the construct path: the role's use of the key is limited to the state machine of
    that name, which CDK cannot do for a generated name)."""

    def __init__(self, scope: Construct, construct_id: str, *, definition_body: sfn.DefinitionBody,
                 encryption_key: kms.IKey, log_key: kms.IKey, log_retention_days: int,
                 state_machine_type: sfn.StateMachineType = sfn.StateMachineType.STANDARD,
                 include_execution_data: bool = False, timeout: cdk.Duration | None = None,
                 state_machine_name: str | None = None) -> None:
        path = f"{scope.node.path}/{construct_id}"
        if encryption_key is None or log_key is None:
            raise ValueError(f"{path}: customer-managed KMS keys (encryption_key, log_key) are required: clause 7")
        self.log_group = EncryptedLogGroup(scope, f"{construct_id}Logs", encryption_key=log_key,
                                           retention_days=log_retention_days)
        super().__init__(
            scope, construct_id, definition_body=definition_body, state_machine_type=state_machine_type,
            state_machine_name=state_machine_name or physical_name(path), timeout=timeout, tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL,
                                include_execution_data=include_execution_data),
            encryption_configuration=sfn.CustomerManagedEncryptionConfiguration(encryption_key))
        policy = self.role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            acknowledge_star_only_actions(policy, STAR_ONLY_REASON)
        acknowledge_in_packs(self.role, "IAMNoInlinePolicy", (NIST_R5, NIST_R4, HIPAA, PCI),
                             "The role's own policy names only what this one state machine uses; a managed "
                             "policy could be attached to other principals, which is broader")
