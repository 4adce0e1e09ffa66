"""The CDK front door: enforce() registers dpguard's plugin, the cdk-nag packs and the Aspects;
acknowledge() records a reasoned, dated acknowledgment with CDK's own mechanism."""
from .enforce import PACKS, PolicyError, acknowledge, enforce, synth
from .plugin import PLUGIN_NAME, DpguardPlugin

__all__ = ["PACKS", "PLUGIN_NAME", "DpguardPlugin", "PolicyError", "acknowledge", "enforce", "synth"]
