"""AWS IoT Core policies: what a device certificate may do (clause 8).

An IoT policy is attached to device certificates; every device that holds one may do what it
allows. A device should connect as itself and use its own topics: AWS IoT's policy variables
(${iot:Connection.Thing.ThingName}, ${iot:ClientId}) scope one policy to each device.
"""
from __future__ import annotations

from ..engine.checks import action_matches
from ..engine.values import Unknown, as_written
from . import rule
from .iam import allow_statements, granted_actions, is_full_wildcard_resource, is_wildcard_action, judge

# The MQTT data-plane actions, and what their resource names.
DATA_PLANE = {"iot:Connect": "client id", "iot:Publish": "topic", "iot:Receive": "topic",
              "iot:Subscribe": "topic filter", "iot:RetainPublish": "topic"}


def _every_resource(resources: list | None) -> str | Unknown | None:
    """The first resource that names every resource ("*", client/*, topic/*), an Unknown when
    a resource cannot be known, else None."""
    unknown = None
    for resource in resources or ():
        if isinstance(resource, str) and is_full_wildcard_resource(resource):
            return resource
        if isinstance(resource, Unknown):
            unknown = unknown or resource
    return unknown


@rule("DP-IotPolicyNoWildcard", clause=8, severity="error", types=["AWS::IoT::Policy"],
      title="IoT policies name their actions and scope MQTT access to each device",
      rationale="Clause 8: each party gets the rights it needs. An IoT policy applies to every "
                "certificate it is attached to: \"iot:*\" or \"*\" lets a device change things, "
                "policies and certificates, and iot:Connect, Publish, Receive or Subscribe on "
                "Resource \"*\" (or on every client, topic/* or topicfilter/*) lets one stolen "
                "device certificate connect as any device and read or write every device's "
                "messages. Resources scoped with policy variables such as "
                "${iot:Connection.Thing.ThingName} are accepted. Allow with NotAction or "
                "NotResource grants everything not listed and fails too.",
      remediation="iot.CfnPolicy(self, 'DevicePolicy', policy_document={'Version': '2012-10-17', 'Statement': [\n"
                  "    {'Effect': 'Allow', 'Action': ['iot:Connect'],\n"
                  "     'Resource': [f'arn:aws:iot:{region}:{account}:client/${{iot:Connection.Thing.ThingName}}']},\n"
                  "    {'Effect': 'Allow', 'Action': ['iot:Publish', 'iot:Receive'],\n"
                  "     'Resource': [f'arn:aws:iot:{region}:{account}:topic/devices/${{iot:Connection.Thing.ThingName}}/*']}]})")
def iot_policy_no_wildcard(r, t):
    statements, unreadable = allow_statements(r, ("PolicyDocument",))
    yield from unreadable
    for s in statements:
        yield from _statement_outcomes(s)


def _statement_outcomes(s):
    for key, present in (("NotAction", s.not_actions), ("NotResource", s.not_resources)):
        if present is not None:
            yield from judge(s, True, f"{s.path}/{key}", f"Allow with {key} grants everything that is not listed")
            return
    actions = granted_actions(s)
    for action in actions:
        if isinstance(action, Unknown):
            yield from judge(s, action, f"{s.path}/Action", "an action of the statement cannot be known")
            return
        if is_wildcard_action(action):
            yield from judge(s, True, f"{s.path}/Action",
                             f"the statement allows every action ({action!r}): name the MQTT actions the device uses")
            return
    data_plane = [(action, what) for action in actions for pattern, what in DATA_PLANE.items()
                  if action_matches(action, pattern)]
    if not data_plane:
        return
    everywhere = _every_resource(s.resources)
    if everywhere is None:
        return
    action, what = data_plane[0]
    if isinstance(everywhere, Unknown):
        yield from judge(s, everywhere, f"{s.path}/Resource", f"{action} may be allowed on every {what}")
    else:
        yield from judge(s, True, f"{s.path}/Resource",
                         f"{action} is allowed on every {what} ({as_written(everywhere)!r}): scope the resource to the "
                         "device with a policy variable such as ${iot:Connection.Thing.ThingName}")
