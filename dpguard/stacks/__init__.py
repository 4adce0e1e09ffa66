"""The baseline stacks (keys, network, data, identity, audit; the organisation audit) and their
per-environment settings."""
from .data import DataStack
from .keys import KeysStack
from .network import NetworkStack
from .org_audit import OrgAuditSettings, OrgAuditStack
from .settings import EnvironmentSettings, SettingsError

__all__ = ["DataStack", "EnvironmentSettings", "KeysStack", "NetworkStack", "OrgAuditSettings", "OrgAuditStack",
           "SettingsError"]
