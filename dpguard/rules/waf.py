"""AWS WAF in front of public entry points (clause 1, a warning).

Clause 1: "network protection controls (e.g. ... network firewalls) to deny access to unauthorized
IP addresses". A web ACL is that firewall for HTTP entry points: CloudFront distributions name it
themselves (DistributionConfig.WebACLId); internet-facing application load balancers, REST API
stages and AppSync GraphQL APIs get one from an AWS::WAFv2::WebACLAssociation (or a WAF Classic
AWS::WAFRegional::WebACLAssociation) whose ResourceArn points at them, in any template of the app.

How an association's ResourceArn is followed: a Ref or Fn::GetAtt (also through Fn::ImportValue
of a scanned stack's export, or a nested stack's parameter) names the resource itself; a stage
ARN built with Fn::Sub/Fn::Join (`arn:...:apigateway:...::/restapis/<api>/stages/<stage>`) names
the stage by a Ref to the Stage resource, or by the API and a literal stage name; a literal load
balancer ARN names a load balancer whose Name the template fixes. A ResourceArn that cannot be
resolved at all (a parameter, an import no scanned stack exports) might protect any entry point
of its kind: those entry points are unverifiable rather than unprotected, and the kind is read
from whatever literal text the ARN has (":apigateway:", ":appsync:", ":elasticloadbalancing:");
when nothing tells the kind, every uncovered entry point of the app is unverifiable. A literal
ARN that matches nothing in the app protects something else and is ignored.
"""
from __future__ import annotations

import weakref
from typing import Any, Iterator

from ..engine.lazy_re import LazyPattern
from ..engine.checks import resource_targets
from ..engine.findings import Outcome, unverifiable, violation
from ..engine.values import ABSENT, ResRef, Unknown, alternatives, as_text, is_literal
from . import rule

DISTRIBUTION = "AWS::CloudFront::Distribution"
LOAD_BALANCER = "AWS::ElasticLoadBalancingV2::LoadBalancer"
REST_STAGE = "AWS::ApiGateway::Stage"
REST_DEPLOYMENT = "AWS::ApiGateway::Deployment"
REST_API = "AWS::ApiGateway::RestApi"
GRAPHQL_API = "AWS::AppSync::GraphQLApi"
ASSOCIATIONS = ("AWS::WAFv2::WebACLAssociation", "AWS::WAFRegional::WebACLAssociation")

KIND = {LOAD_BALANCER: "alb", REST_STAGE: "rest", REST_DEPLOYMENT: "rest", GRAPHQL_API: "appsync"}
WHAT = {"alb": "internet-facing application load balancer", "rest": "REST API stage",
        "appsync": "AppSync API"}
# Literal text in an ARN that tells which kind of resource it names.
_KIND_HINTS = (("alb", (":elasticloadbalancing:", "loadbalancer/app/")),
               ("rest", (":apigateway:", "/restapis/")), ("appsync", (":appsync:", ":apis/")))
_WHOLE_TOKEN = LazyPattern(r"^⟨(\d+):([^.⟩]+)(?:\.([^⟩]+))?⟩$")
_STAGE_ARN = LazyPattern(r"/restapis/([^/]+)/stages/([^/]+)$")
_APPSYNC_ARN = LazyPattern(r":apis/([^/]+)$")
_ALB_ARN = LazyPattern(r":loadbalancer/app/([^/]+)/")


class _Coverage:
    """What the app's web ACL associations protect, worked out once per app."""

    def __init__(self, app):
        self.sure: set = set()  # keys of protected entry points (see _keys)
        self.conditional: dict = {}  # key -> the association created only under a condition
        self.unresolved: list[tuple[str | None, Any, Unknown]] = []  # (kind, association, why)
        self.alb_names: dict[str, Any] = {}  # literal load balancer name -> association
        for assoc in app.of_type(*ASSOCIATIONS):
            deployed = assoc.deployed
            if deployed is False:
                continue
            for value in alternatives(assoc.props.get("ResourceArn", ABSENT), assoc.template):
                self._add(assoc, value, deployed is True)

    def _add(self, assoc, value: Any, sure: bool) -> None:
        if isinstance(value, Unknown):
            self.unresolved.append((_kind_of(assoc.props.get("ResourceArn")), assoc, value))
            return
        keys = []
        if isinstance(value, ResRef):
            keys.append(("resource", value.template_uid, value.logical_id))
        else:
            text = as_text(value) or ""
            whole = _WHOLE_TOKEN.match(text)
            stage = _STAGE_ARN.search(text)
            api = _APPSYNC_ARN.search(text)
            alb = _ALB_ARN.search(text)
            if whole:
                keys.append(("resource", int(whole.group(1)), whole.group(2)))
            elif stage:
                api_part, stage_part = stage.groups()
                token = _WHOLE_TOKEN.match(stage_part)
                if token:
                    keys.append(("resource", int(token.group(1)), token.group(2)))
                elif is_literal(stage_part):
                    keys.append(("stage", api_part, stage_part))
            elif api:
                token = _WHOLE_TOKEN.match(api.group(1))
                if token:
                    keys.append(("resource", int(token.group(1)), token.group(2)))
            elif alb and is_literal(alb.group(1)):
                keys.append(("alb", alb.group(1)))
        for key in keys:
            if sure:
                self.sure.add(key)
            else:
                self.conditional.setdefault(key, assoc)


def _kind_of(node: Any) -> str | None:
    """The kind of entry point an unresolved ARN names, from its literal text; None if unknown."""
    texts = list(_texts(node, 0))
    for kind, hints in _KIND_HINTS:
        if any(h in text for text in texts for h in hints):
            return kind
    return None


def _texts(node: Any, depth: int) -> Iterator[str]:
    if depth > 32:
        return
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            if key not in ("Ref", "Fn::ImportValue"):  # names of parameters and exports say nothing
                yield from _texts(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item, depth + 1)


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def coverage(app) -> _Coverage:
    found = _CACHE.get(app)
    if found is None or found[0] != len(app.templates):
        found = _CACHE[app] = (len(app.templates), _Coverage(app))
    return found[1]


# ---------------------------------------------------------------- which entry points are public

def _public(r) -> bool | Unknown:
    """Is the resource a public HTTP entry point that a web ACL should guard?"""
    if r.type == LOAD_BALANCER:
        types = [v for _, v in r.values("Type")]
        schemes = [v for _, v in r.values("Scheme")]
        for value in types + schemes:
            if isinstance(value, Unknown):
                return Unknown(f"its type or scheme is chosen at deploy time ({value.reason})")
        application = any(v is ABSENT or as_text(v) == "application" for v in types)
        facing = any(v is ABSENT or as_text(v) == "internet-facing" for v in schemes)
        return application and facing
    if r.type == GRAPHQL_API:
        visibility = [v for _, v in r.values("Visibility")]
        if any(isinstance(v, Unknown) for v in visibility):
            return Unknown("its visibility is chosen at deploy time")
        return not all(as_text(v) == "PRIVATE" for v in visibility)
    if r.type == REST_DEPLOYMENT and not any(v is not ABSENT and v != "" for _, v in r.values("StageName")):
        return False  # a deployment without StageName creates no stage
    return _rest_api_public(r)


def _rest_api_public(r) -> bool | Unknown:
    apis = resource_targets(r, "RestApiId", REST_API)
    if not apis:
        return True
    for api in apis:
        if isinstance(api, Unknown):
            return Unknown(f"its REST API cannot be checked for a PRIVATE endpoint ({api.reason})")
        types = [v for _, v in api.values("EndpointConfiguration.Types.*")]
        if any(isinstance(v, Unknown) for v in types):
            return Unknown("its REST API's endpoint type is chosen at deploy time")
        if not (types and all(as_text(v) == "PRIVATE" for v in types)):
            return True
    return False


# ---------------------------------------------------------------- is it covered

def _keys(r) -> list:
    """The keys under which an association may name the resource."""
    keys = [("resource", r.template.uid, r.logical_id)]
    if r.type in (REST_STAGE, REST_DEPLOYMENT):
        names = [as_text(v) for _, v in r.values("StageName") if is_literal(v)]
        for _, api in r.values("RestApiId"):
            api_text = api.token() if isinstance(api, ResRef) else as_text(api)
            keys.extend(("stage", api_text, name) for name in names if api_text)
    if r.type == LOAD_BALANCER:
        keys.extend(("alb", as_text(v)) for _, v in r.values("Name") if isinstance(v, str) and is_literal(v))
    return keys


def _web_acl_outcomes(r) -> Iterator[Outcome]:
    kind = KIND[r.type]
    what = WHAT[kind]
    public = _public(r)
    if public is False:
        return
    cover = coverage(r.template.app)
    keys = _keys(r)
    if any(k in cover.sure for k in keys):
        return
    message = (f"the {what} has no AWS WAF web ACL: no AWS::WAFv2::WebACLAssociation in the app names it "
               f"in its ResourceArn; associate a regional web ACL with it")
    conditional = next((cover.conditional[k] for k in keys if k in cover.conditional), None)
    if conditional is not None:
        yield unverifiable("Properties", f"the {what}'s web ACL association {conditional.logical_id} is "
                                         f"created only under a condition decided at deploy time")
        return
    unresolved = next((u for u in cover.unresolved if u[0] in (None, kind)), None)
    if unresolved is not None:
        yield unverifiable("Properties", f"{message}, unless association {unresolved[1].logical_id} does: its "
                                         f"ResourceArn cannot be resolved ({unresolved[2].reason})")
    elif isinstance(public, Unknown):
        yield unverifiable("Properties", f"{message}, and whether it is public cannot be told: {public.reason}")
    else:
        yield violation("Properties", message)


@rule("DP-WafProtected", clause=1, severity="warning",
      types=[DISTRIBUTION, LOAD_BALANCER, REST_STAGE, REST_DEPLOYMENT, GRAPHQL_API],
      title="Public HTTP entry points are behind an AWS WAF web ACL",
      rationale="Clause 1: network protection controls, firewalls among them, deny access to "
                "unauthorized IP addresses. A web ACL filters requests before they reach the "
                "application (IP sets, rate limits, managed rules against common exploits). "
                "Judged: CloudFront distributions (DistributionConfig.WebACLId; absent means "
                "none), internet-facing application load balancers (Scheme defaults to "
                "internet-facing, Type to application), REST API stages and the stages "
                "deployments create (unless the API's endpoint is PRIVATE) and AppSync GraphQL "
                "APIs (unless PRIVATE), which need an AWS::WAFv2::WebACLAssociation naming them "
                "anywhere in the app, also in another stack through an import. An association "
                "whose ResourceArn cannot be resolved makes the uncovered entry points of its "
                "kind unverifiable, not unprotected. HTTP APIs (API Gateway v2) cannot take a "
                "web ACL and are not judged. A warning: a web ACL is defence in depth, not the "
                "control that authenticates users.",
      remediation="acl = wafv2.CfnWebACL(self, 'Acl', scope='REGIONAL', default_action=..., rules=[...], "
                  "visibility_config=...)\n"
                  "wafv2.CfnWebACLAssociation(self, 'ApiAcl', resource_arn=api.deployment_stage.stage_arn, "
                  "web_acl_arn=acl.attr_arn)  # or alb.load_balancer_arn, graphql_api.arn\n"
                  "cloudfront.Distribution(self, 'Cdn', ..., web_acl_id=cloudfront_acl.attr_arn)")
def waf_protected(r, t):
    if r.type == DISTRIBUTION:
        for path, acl in r.values("DistributionConfig.WebACLId"):
            if isinstance(acl, Unknown):
                yield unverifiable(path, f"the distribution's web ACL cannot be verified: {acl.reason}")
            elif acl is ABSENT or acl == "":
                yield violation(path, "the distribution has no AWS WAF web ACL (no WebACLId); set WebACLId to "
                                      "the ARN of a CLOUDFRONT-scope web ACL")
        return
    yield from _web_acl_outcomes(r)
