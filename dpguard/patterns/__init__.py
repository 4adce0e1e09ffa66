"""Reusable secure constructs (L3) for app teams: each is compliant with the Data Protection
Policy by default, so `dpguard.enforce(app)` passes without acknowledgments of your own.

    from dpguard.patterns import DataKey, AccessLogBucket, SecureBucket, SecureDatabase, EncryptedLogGroup,
        SecureTable, SecureFunction, SecureQueue, SecureTopic, SecureVpc, SecureRestApi,
        SecureStateMachine, log_custom_resource_providers

See docs/baseline.md for what each one sets and which clause it meets."""
from .api import SecureRestApi
from .database import SecureDatabase
from .keys import DataKey
from .logs import RETENTION_DAYS, EncryptedLogGroup, log_custom_resource_providers
from .functions import SecureFunction
from .network import SecureVpc
from .queues import SecureQueue
from .state_machines import SecureStateMachine
from .storage import COGNITO_IDENTITY, USER_PARTITION, AccessLogBucket, SecureBucket
from .tables import SecureTable
from .tags import classify
from .topics import SecureTopic

__all__ = ["AccessLogBucket", "COGNITO_IDENTITY", "DataKey", "EncryptedLogGroup", "RETENTION_DAYS",
           "SecureBucket", "SecureDatabase", "SecureFunction", "SecureQueue", "SecureRestApi",
           "SecureStateMachine", "SecureTable", "SecureTopic", "SecureVpc", "USER_PARTITION", "classify",
           "log_custom_resource_providers"]
