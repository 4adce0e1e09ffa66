"""Edge endpoints (clause 3): load balancer listeners, CloudFront distributions and API Gateway
custom domains accept TLS only, with TLS 1.2 as the oldest version they negotiate. Transfer Family
servers (clauses 1, 3, 9): private endpoints, no plain FTP, no SHA-1 security policy, logs."""
from __future__ import annotations

import re
from typing import Any, Iterator

from ..engine.lazy_re import LazyPattern
from ..engine.checks import nested_values, require, resource_targets
from ..engine.findings import Outcome, unverifiable, violation
from ..engine.values import ABSENT, Unknown, alternatives, as_bool, as_text, described, is_literal
from . import rule

LISTENER = "AWS::ElasticLoadBalancingV2::Listener"
LISTENER_RULE = "AWS::ElasticLoadBalancingV2::ListenerRule"
LOAD_BALANCER = "AWS::ElasticLoadBalancingV2::LoadBalancer"
CLASSIC_LB = "AWS::ElasticLoadBalancing::LoadBalancer"
DISTRIBUTION = "AWS::CloudFront::Distribution"
VPC_ORIGIN = "AWS::CloudFront::VpcOrigin"
REST_DOMAIN = "AWS::ApiGateway::DomainName"
REST_DOMAIN_V2 = "AWS::ApiGateway::DomainNameV2"
HTTP_DOMAIN = "AWS::ApiGatewayV2::DomainName"

# Listener protocols that are encrypted end to end at the load balancer. QUIC carries TLS 1.3
# inside the protocol itself; TCP_QUIC also accepts plain TCP, so it is not here.
ENCRYPTED_LISTENER_PROTOCOLS = ("HTTPS", "TLS", "QUIC")


# ---------------------------------------------------------------- small helpers

def upper(value: Any) -> str:
    text = as_text(value)
    return text.upper() if text is not None else ""


def label(node: Any, tpl, key: str, default: str = "") -> str:
    """A literal attribute of a list item (port, origin id) to name it in messages."""
    values = nested_values(node, tpl, key)
    text = as_text(values[0]) if len(values) == 1 else None
    return text if text is not None and is_literal(text) else default


# ELB security policy names carry their oldest TLS version: ELBSecurityPolicy-TLS13-1-2-2021-06,
# -TLS-1-2-2017-01, -FS-1-2-Res-2020-10 (1.2); -TLS13-1-0-2021-06, -FS-2018-06, -2016-08 (1.0).
_ELB_POLICY_FLOOR = LazyPattern(r"(?:TLS13|TLS|FS)-1-(\d)", re.IGNORECASE)


def elb_policy_is_tls12(name: Any) -> bool:
    match = _ELB_POLICY_FLOOR.search(as_text(name) or "")
    return bool(match) and int(match.group(1)) >= 2


# ---------------------------------------------------------------- ALB / NLB listeners

def _load_balancer_label(listener) -> str:
    names = [t.logical_id for t in resource_targets(listener, "LoadBalancerArn", LOAD_BALANCER)
             if not isinstance(t, Unknown)]
    return f" of load balancer {names[0]}" if len(names) == 1 else ""


def _gateway_listener(listener) -> bool | Unknown:
    """Is the listener on a Gateway Load Balancer (whose listeners have no protocol)?"""
    for target in resource_targets(listener, "LoadBalancerArn", LOAD_BALANCER):
        if isinstance(target, Unknown):
            return target
        if any(v == "gateway" for _, v in target.values("Type")):
            return True
    return False


def _redirect_only(r, path: str, what: str) -> Iterator[Outcome]:
    """Every action at `path` must redirect to HTTPS: that is all plain HTTP may do."""
    for item_path, action in r.values(f"{path}.*"):
        if action is ABSENT:
            continue  # a listener without actions does not deploy
        if isinstance(action, Unknown):
            yield unverifiable(item_path, f"cannot read an action of {what}: {action.reason}")
            continue
        kinds = nested_values(action, r.template, "Type")
        redirects = True
        for kind in kinds:
            if isinstance(kind, Unknown):
                yield unverifiable(f"{item_path}/Type", f"cannot tell what {what} does: {kind.reason}")
                redirects = False
            elif str(as_text(kind)).lower() != "redirect":
                yield violation(f"{item_path}/Type", f"{what} serves plain HTTP ({as_text(kind)}); "
                                                     f"it may only redirect to HTTPS")
                redirects = False
        if not redirects:
            continue
        for protocol in nested_values(action, r.template, "RedirectConfig", "Protocol"):
            if isinstance(protocol, Unknown):
                yield unverifiable(f"{item_path}/RedirectConfig/Protocol",
                                   f"cannot tell where {what} redirects: {protocol.reason}")
            elif upper(protocol) != "HTTPS":
                yield violation(f"{item_path}/RedirectConfig/Protocol",
                                f"{what} redirects without switching to HTTPS")


def _listener_rule_tls(r) -> Iterator[Outcome]:
    """A rule added to an HTTP listener must redirect too, or it reopens plain HTTP."""
    for listener in resource_targets(r, "ListenerArn", LISTENER):
        if isinstance(listener, Unknown):
            yield unverifiable("Properties/ListenerArn",
                               f"cannot tell whether the rule's listener uses plain HTTP: {listener.reason}")
            continue
        protocols = [v for _, v in listener.values("Protocol")]
        if any(isinstance(p, Unknown) or upper(p) == "HTTP" for p in protocols):
            yield from _redirect_only(r, "Actions", f"the rule on HTTP listener {listener.logical_id}")


@rule("DP-ElbListenerTls", clause=3, severity="error", types=[LISTENER, LISTENER_RULE],
      title="Load balancer listeners accept only TLS; plain HTTP only redirects to HTTPS",
      rationale="Clause 3: all data in transit over TLS/HTTPS, unsecured channels disabled. An "
                "HTTP listener may exist only to redirect to HTTPS, and rules added to it must "
                "redirect too; TCP, UDP and TCP_UDP listeners carry whatever the client sends, "
                "unencrypted as far as the load balancer can vouch (TLS passthrough on TCP needs "
                "an acknowledgment saying so). Gateway Load Balancer listeners have no protocol "
                "and are not client endpoints.",
      remediation="alb.add_listener('Https', port=443, certificates=[cert], "
                  "ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS)\n"
                  "alb.add_redirect(source_port=80, target_port=443)  # HTTP only redirects")
def elb_listener_tls(r, t):
    if r.type == LISTENER_RULE:
        yield from _listener_rule_tls(r)
        return
    where = _load_balancer_label(r)
    outcomes = []
    for path, protocol in r.values("Protocol"):
        if isinstance(protocol, Unknown):
            outcomes.append(unverifiable(path, f"cannot tell the listener's protocol: {protocol.reason}"))
        elif protocol is ABSENT:
            gateway = _gateway_listener(r)
            if isinstance(gateway, Unknown):
                outcomes.append(unverifiable(path, f"the listener{where} names no protocol and its load "
                                                   f"balancer cannot be checked: {gateway.reason}"))
            elif not gateway:
                outcomes.append(violation(path, f"the listener{where} names no protocol; use HTTPS or TLS"))
        elif upper(protocol) in ENCRYPTED_LISTENER_PROTOCOLS or upper(protocol) == "GENEVE":
            continue
        elif upper(protocol) == "HTTP":
            outcomes.extend(_redirect_only(r, "DefaultActions", f"the HTTP listener{where}"))
        else:
            outcomes.append(violation(path, f"the listener{where} accepts unencrypted {as_text(protocol)} "
                                            f"traffic; use TLS"))
    yield from outcomes


@rule("DP-ElbListenerTlsPolicy", clause=3, severity="error", types=[LISTENER],
      title="HTTPS and TLS listeners use a TLS 1.2+ security policy",
      rationale="Clause 3 asks for TLS; TLS 1.0 and 1.1 are broken enough that it must mean TLS "
                "1.2 or later. Without SslPolicy the listener gets a default that has varied over "
                "time and for API-created listeners is ELBSecurityPolicy-2016-08, which accepts "
                "TLS 1.0, so the policy must be named.",
      remediation="elbv2.ApplicationListener(..., ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS)  "
                  "# ELBSecurityPolicy-TLS13-1-2-2021-06")
def elb_listener_tls_policy(r, t):
    protocols = [v for _, v in r.values("Protocol")]
    encrypted = any(upper(p) in ("HTTPS", "TLS") for p in protocols)
    maybe = any(isinstance(p, Unknown) for p in protocols)
    if not (encrypted or maybe):
        return
    outcomes = []
    for path, policy in r.values("SslPolicy"):
        if isinstance(policy, Unknown):
            outcomes.append(unverifiable(path, f"cannot tell the listener's TLS policy: {policy.reason}"))
            continue
        if policy is ABSENT:
            problem = "no SslPolicy is set, and the default (ELBSecurityPolicy-2016-08) accepts TLS 1.0"
        elif not elb_policy_is_tls12(policy):
            problem = f"SslPolicy {as_text(policy)} accepts TLS versions older than 1.2"
        else:
            continue
        if encrypted:
            outcomes.append(violation(path, problem))
        else:
            outcomes.append(unverifiable(path, f"{problem} (if the listener's protocol, which cannot be "
                                               f"known, is HTTPS or TLS)"))
    yield from outcomes


# ---------------------------------------------------------------- classic load balancers

@rule("DP-ClbListenerTls", clause=3, severity="error", types=[CLASSIC_LB],
      title="Classic load balancer listeners use HTTPS or SSL",
      rationale="Clause 3: all data in transit over TLS, unsecured channels disabled. A classic "
                "load balancer cannot redirect HTTP to HTTPS, so any HTTP or TCP listener serves "
                "unencrypted traffic.",
      remediation="Move to an Application Load Balancer, or: clb.add_listener(external_port=443, "
                  "external_protocol=elb.LoadBalancingProtocol.HTTPS, ssl_certificate_arn=cert_arn)")
def clb_listener_tls(r, t):
    outcomes = []
    for path, listener in r.values("Listeners.*"):
        if listener is ABSENT:
            continue
        port = label(listener, r.template, "LoadBalancerPort", "?")
        for protocol in nested_values(listener, r.template, "Protocol"):
            if isinstance(protocol, Unknown):
                outcomes.append(unverifiable(f"{path}/Protocol",
                                             f"cannot tell the protocol of the listener on port {port}: {protocol.reason}"))
            elif upper(protocol) not in ("HTTPS", "SSL"):
                outcomes.append(violation(f"{path}/Protocol",
                                          f"the listener on port {port} accepts unencrypted {as_text(protocol) or 'traffic'}; "
                                          f"a classic load balancer cannot redirect, so use HTTPS or SSL"))
    yield from outcomes


_OLD_PROTOCOL_ATTRIBUTES = ("Protocol-SSLv2", "Protocol-SSLv3", "Protocol-TLSv1", "Protocol-TLSv1.1")


def _negotiation_policy_verdict(policy: Any, tpl) -> bool | Unknown:
    """Is one Policies[] entry an SSL negotiation policy with TLS 1.2 as its floor? A predefined
    policy is named by Reference-Security-Policy; a custom one lists the protocols it enables
    (attributes not listed are off)."""
    if isinstance(policy, Unknown):
        return policy
    if not isinstance(policy, dict):
        return False
    for kind in nested_values(policy, tpl, "PolicyType"):
        if isinstance(kind, Unknown):
            return kind
        if kind != "SSLNegotiationPolicyType":
            return False
    verdict: bool | Unknown = True
    for attributes in nested_values(policy, tpl, "Attributes"):
        if isinstance(attributes, Unknown):
            return attributes
        if not isinstance(attributes, list):
            return False
        settings: dict[str, list] = {}
        for item in attributes:
            for entry in alternatives(item, tpl):
                if isinstance(entry, Unknown):
                    return entry
                if not isinstance(entry, dict):
                    continue
                for name in nested_values(entry, tpl, "Name"):
                    if isinstance(name, Unknown):
                        return name
                    settings.setdefault(as_text(name) or "", []).extend(nested_values(entry, tpl, "Value"))
        checks: list = []
        reference = settings.get("Reference-Security-Policy")
        if reference is not None:
            checks = [v if isinstance(v, Unknown) else elb_policy_is_tls12(v) for v in reference]
        else:  # a custom policy: TLS 1.2 on, everything older off
            checks = [v if isinstance(v, Unknown) else as_bool(v) is True
                      for v in settings.get("Protocol-TLSv1.2", [ABSENT])]
            checks += [v if isinstance(v, Unknown) else as_bool(v) is not True
                       for name in _OLD_PROTOCOL_ATTRIBUTES for v in settings.get(name, [])]
        if any(c is False for c in checks):
            return False
        verdict = next((c for c in checks if isinstance(c, Unknown)), verdict)
    return verdict


def _covered(choices: list, good: set, tpl) -> bool:
    """Does every possible value of a listener's PolicyNames (or port) name a good policy?"""
    def item_good(item):
        return all(as_text(v) in good for v in alternatives(item, tpl))

    if not choices:
        return False
    for choice in choices:
        items = choice if isinstance(choice, list) else [choice]
        if not any(item_good(item) for item in items):
            return False
    return True


@rule("DP-ClbTlsPolicy", clause=3, severity="error", types=[CLASSIC_LB],
      title="Classic load balancer HTTPS/SSL listeners negotiate TLS 1.2 or later",
      rationale="Clause 3 asks for TLS, meaning TLS 1.2 or later. Without an SSL negotiation "
                "policy a classic listener uses ELBSecurityPolicy-2016-08, which accepts TLS 1.0; "
                "the listener needs an SSLNegotiationPolicyType policy referencing "
                "ELBSecurityPolicy-TLS-1-2-2017-01 (by PolicyNames or LoadBalancerPorts).",
      remediation="Policies: [{PolicyName: TLS12, PolicyType: SSLNegotiationPolicyType, Attributes: "
                  "[{Name: Reference-Security-Policy, Value: ELBSecurityPolicy-TLS-1-2-2017-01}]}] "
                  "and PolicyNames: [TLS12] on the listener (in CDK, an escape hatch on CfnLoadBalancer); "
                  "better, move to an Application Load Balancer.")
def clb_tls_policy(r, t):
    tpl = r.template
    outcomes = []
    for _, policies in r.values("Policies"):
        if isinstance(policies, Unknown):
            outcomes.append(unverifiable("Properties/Policies", f"cannot read the policies: {policies.reason}"))
            continue
        good_names: set = set()
        good_ports: set = set()
        doubt: Unknown | None = None
        for item in policies if isinstance(policies, list) else []:
            variants = alternatives(item, tpl)
            verdicts = [_negotiation_policy_verdict(v, tpl) for v in variants]
            if all(v is True for v in verdicts):
                for v in variants:
                    good_names.update(as_text(n) for n in nested_values(v, tpl, "PolicyName"))
                    for ports in nested_values(v, tpl, "LoadBalancerPorts"):
                        if isinstance(ports, list):
                            good_ports.update(as_text(p) for p in ports)
            else:
                doubt = doubt or next((v for v in verdicts if isinstance(v, Unknown)), None)
        for path, listener in r.values("Listeners.*"):
            if listener is ABSENT or isinstance(listener, Unknown):
                continue  # DP-ClbListenerTls reports listeners it cannot read
            if not any(upper(p) in ("HTTPS", "SSL") for p in nested_values(listener, tpl, "Protocol")):
                continue
            names = [v for v in nested_values(listener, tpl, "PolicyNames") if v is not ABSENT]
            ports = nested_values(listener, tpl, "LoadBalancerPort")
            if _covered(names, good_names, tpl) or _covered(ports, good_ports, tpl):
                continue
            port = label(listener, tpl, "LoadBalancerPort", "?")
            message = (f"the listener on port {port} may negotiate TLS older than 1.2: give it an SSLNegotiationPolicyType "
                       f"policy referencing ELBSecurityPolicy-TLS-1-2-2017-01")
            unknown = doubt or next((v for v in names + ports if isinstance(v, Unknown)), None)
            if unknown is not None:
                outcomes.append(unverifiable(path, f"{message} (cannot verify: {unknown.reason})"))
            else:
                outcomes.append(violation(path, message))
    yield from outcomes


# ---------------------------------------------------------------- CloudFront

VIEWER_TLS = ("https-only", "redirect-to-https")


@rule("DP-CloudFrontHttpsOnly", clause=3, severity="error", types=[DISTRIBUTION],
      title="CloudFront serves viewers over HTTPS only",
      rationale="Clause 3 covers external endpoints used by customers: every cache behavior must "
                "be https-only or redirect-to-https; allow-all serves content over plain HTTP.",
      remediation="cloudfront.Distribution(self, 'Cdn', default_behavior=cloudfront.BehaviorOptions("
                  "origin=origin, viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS))")
def cloudfront_https_only(r, t):
    yield from require(r, "DistributionConfig.DefaultCacheBehavior.ViewerProtocolPolicy",
                       lambda v: v in VIEWER_TLS,
                       "the default cache behavior serves viewers over plain HTTP; use redirect-to-https")
    yield from require(r, "DistributionConfig.CacheBehaviors.*.ViewerProtocolPolicy",
                       lambda v: v is ABSENT or v in VIEWER_TLS,
                       "a cache behavior serves viewers over plain HTTP; use redirect-to-https")


_CLOUDFRONT_TLS = LazyPattern(r"^TLSv1\.(\d)_(\d{4})$")


def cloudfront_min_tls_ok(version: Any) -> bool:
    """TLSv1.2_2021 or later (TLSv1.2_2025, TLSv1.3_2025, ...); TLSv1.2_2018/2019 allow weak ciphers
    and older policies allow TLS 1.0/1.1."""
    match = _CLOUDFRONT_TLS.match(as_text(version) or "")
    if not match:
        return False
    minor, year = int(match.group(1)), int(match.group(2))
    return minor >= 3 or (minor == 2 and year >= 2021)


@rule("DP-CloudFrontMinTls", clause=3, severity="error", types=[DISTRIBUTION],
      title="CloudFront viewer TLS policy is TLSv1.2_2021 or later",
      rationale="Clause 3 asks for TLS, meaning TLS 1.2 or later. The default *.cloudfront.net "
                "certificate (CloudFrontDefaultCertificate, or no ViewerCertificate at all) "
                "accepts TLS 1.0 whatever MinimumProtocolVersion says, and a custom certificate "
                "without MinimumProtocolVersion defaults to TLSv1.",
      remediation="cloudfront.Distribution(self, 'Cdn', ..., domain_names=['cdn.example.com'], "
                  "certificate=cert, minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021)")
def cloudfront_min_tls(r, t):
    outcomes = []
    for path, cert in r.values("DistributionConfig.ViewerCertificate"):
        if isinstance(cert, Unknown):
            outcomes.append(unverifiable(path, f"cannot read the viewer certificate: {cert.reason}"))
            continue
        if not isinstance(cert, dict):
            outcomes.append(violation(path, "no viewer certificate: the default *.cloudfront.net "
                                            "certificate accepts TLS 1.0"))
            continue
        default = nested_values(cert, r.template, "CloudFrontDefaultCertificate")
        if any(as_bool(v) is True for v in default):
            outcomes.append(violation(f"{path}/CloudFrontDefaultCertificate",
                                      "the default *.cloudfront.net certificate accepts TLS 1.0; use a "
                                      "custom certificate with TLSv1.2_2021"))
        elif any(isinstance(v, Unknown) for v in default):
            reason = next(v for v in default if isinstance(v, Unknown)).reason
            outcomes.append(unverifiable(f"{path}/CloudFrontDefaultCertificate",
                                         f"cannot tell whether the default certificate is used: {reason}"))
            continue
        for version in nested_values(cert, r.template, "MinimumProtocolVersion"):
            if isinstance(version, Unknown):
                outcomes.append(unverifiable(f"{path}/MinimumProtocolVersion",
                                             f"cannot tell the minimum TLS version: {version.reason}"))
            elif any(as_bool(v) is True for v in default):
                continue  # already reported: the version is ignored with the default certificate
            elif version is ABSENT:
                outcomes.append(violation(f"{path}/MinimumProtocolVersion",
                                          "no MinimumProtocolVersion: CloudFront then accepts TLS 1.0"))
            elif not isinstance(version, str):
                outcomes.append(violation(f"{path}/MinimumProtocolVersion",
                                          f"MinimumProtocolVersion is {described(version)}, not a security policy "
                                          f"name: set TLSv1.2_2021 or later"))
            elif not cloudfront_min_tls_ok(version):
                outcomes.append(violation(f"{path}/MinimumProtocolVersion",
                                          f"MinimumProtocolVersion {as_text(version)} is older than TLSv1.2_2021"))
    yield from outcomes


_OLD_ORIGIN_PROTOCOLS = ("SSLv3", "TLSv1", "TLSv1.1")


def _origin_protocol_outcomes(config: Any, tpl, path: str, what: str) -> Iterator[Outcome]:
    """OriginProtocolPolicy https-only and no SSL/TLS version older than 1.2."""
    policies = nested_values(config, tpl, "OriginProtocolPolicy")
    for policy in policies:
        if isinstance(policy, Unknown):
            yield unverifiable(f"{path}/OriginProtocolPolicy",
                               f"cannot tell how CloudFront reaches {what}: {policy.reason}")
        elif policy != "https-only":
            yield violation(f"{path}/OriginProtocolPolicy",
                            f"CloudFront may reach {what} over plain HTTP "
                            f"(OriginProtocolPolicy {as_text(policy) or 'not set'}); use https-only")
    if all(p == "http-only" for p in policies):
        return  # no TLS at all; reported above
    for protocols in nested_values(config, tpl, "OriginSSLProtocols"):
        if isinstance(protocols, Unknown):
            yield unverifiable(f"{path}/OriginSSLProtocols",
                               f"cannot tell which TLS versions CloudFront uses with {what}: {protocols.reason}")
        elif protocols is ABSENT:
            yield violation(f"{path}/OriginSSLProtocols",
                            f"no OriginSSLProtocols for {what}: set [TLSv1.2] so that older versions are never used")
        elif not isinstance(protocols, list) or not protocols:
            yield violation(f"{path}/OriginSSLProtocols",
                            f"OriginSSLProtocols for {what} is {described(protocols)}, not a list of TLS versions: "
                            f"set [TLSv1.2] so that older versions are never used")
        else:
            values = [v for item in protocols for v in alternatives(item, tpl) if v is not ABSENT]
            unknown = next((v for v in values if isinstance(v, Unknown)), None)
            old = [v for v in values if isinstance(v, str) and v in _OLD_ORIGIN_PROTOCOLS]
            wrong = [v for v in values if not isinstance(v, (str, Unknown))]
            if old:
                yield violation(f"{path}/OriginSSLProtocols",
                                f"CloudFront may use {', '.join(old)} with {what}; allow TLSv1.2 only")
            elif wrong:
                yield violation(f"{path}/OriginSSLProtocols",
                                f"OriginSSLProtocols for {what} holds {described(wrong[0])}, not a TLS version "
                                f"name: set [TLSv1.2]")
            elif not values:
                yield violation(f"{path}/OriginSSLProtocols",
                                f"OriginSSLProtocols for {what} is empty: set [TLSv1.2]")
            elif unknown is not None:
                yield unverifiable(f"{path}/OriginSSLProtocols",
                                   f"cannot tell which TLS versions CloudFront uses with {what}: {unknown.reason}")


@rule("DP-CloudFrontOriginTls", clause=3, severity="error", types=[DISTRIBUTION, VPC_ORIGIN],
      title="CloudFront reaches custom and VPC origins over TLS 1.2",
      rationale="Clause 3 includes internal channels: the hop from CloudFront to the origin must "
                "be HTTPS (https-only; match-viewer and http-only allow HTTP) and must not fall "
                "back to SSLv3, TLSv1 or TLSv1.1. S3 origins (S3OriginConfig) use HTTPS already.",
      remediation="origins.HttpOrigin('api.example.com', protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY, "
                  "origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2])")
def cloudfront_origin_tls(r, t):
    tpl = r.template
    outcomes: list = []
    if r.type == VPC_ORIGIN:
        for path, config in r.values("VpcOriginEndpointConfig"):
            if isinstance(config, Unknown):
                outcomes.append(unverifiable(path, f"cannot read the VPC origin: {config.reason}"))
            elif config is not ABSENT:
                outcomes.extend(_origin_protocol_outcomes(config, tpl, path, "the VPC origin"))
        yield from outcomes
        return
    for path, origin in r.values("DistributionConfig.Origins.*"):
        if isinstance(origin, Unknown):
            outcomes.append(unverifiable(path, f"cannot read an origin: {origin.reason}"))
            continue
        what = f"origin {label(origin, tpl, 'Id', path.rsplit('/', 1)[-1])}"
        for config in nested_values(origin, tpl, "CustomOriginConfig"):
            if isinstance(config, Unknown):
                outcomes.append(unverifiable(f"{path}/CustomOriginConfig", f"cannot read {what}: {config.reason}"))
            elif config is not ABSENT:
                outcomes.extend(_origin_protocol_outcomes(config, tpl, f"{path}/CustomOriginConfig", what))
    # The legacy single-origin form (DistributionConfig.CustomOrigin) still deploys.
    for path, config in r.values("DistributionConfig.CustomOrigin"):
        if isinstance(config, Unknown):
            outcomes.append(unverifiable(path, f"cannot read the custom origin: {config.reason}"))
        elif config is not ABSENT:
            outcomes.extend(_origin_protocol_outcomes(config, tpl, path, "the custom origin"))
    yield from outcomes


# ---------------------------------------------------------------- API Gateway custom domains

def api_domain_policy_ok(value: Any) -> bool:
    """TLS_1_2, or an enhanced policy (SecurityPolicy_TLS12_..., SecurityPolicy_TLS13_...), all of
    which refuse TLS 1.0 and 1.1."""
    text = as_text(value) or ""
    return text == "TLS_1_2" or text.startswith(("SecurityPolicy_TLS12", "SecurityPolicy_TLS13"))


@rule("DP-ApiGatewayDomainTls12", clause=3, severity="error",
      types=[REST_DOMAIN, REST_DOMAIN_V2, HTTP_DOMAIN],
      title="API Gateway custom domains require TLS 1.2 or later",
      rationale="Clause 3 asks for TLS, meaning TLS 1.2 or later. A REST API custom domain without "
                "SecurityPolicy uses TLS_1_0; the template must name TLS_1_2 (or an enhanced "
                "SecurityPolicy_TLS12/TLS13 policy) on every domain configuration.",
      remediation="apigw.DomainName(self, 'Domain', domain_name=..., certificate=cert, "
                  "security_policy=apigw.SecurityPolicy.TLS_1_2)  # apigwv2.DomainName: "
                  "security_policy=apigwv2.SecurityPolicy.TLS_1_2")
def api_gateway_domain_tls12(r, t):
    message = "the custom domain accepts TLS 1.0 (SecurityPolicy is not TLS_1_2)"
    if r.type == HTTP_DOMAIN:
        yield from require(r, "DomainNameConfigurations.*.SecurityPolicy", api_domain_policy_ok, message)
    else:
        yield from require(r, "SecurityPolicy", api_domain_policy_ok, message)


# ---------------------------------------------------------------- Transfer Family servers

TRANSFER_SERVER = "AWS::Transfer::Server"
# VPC (and the deprecated VPC_ENDPOINT) endpoints sit in our subnets behind security groups.
PRIVATE_TRANSFER_ENDPOINTS = ("VPC", "VPC_ENDPOINT")
# The only server policy with SHA-1 key exchange (diffie-hellman-group14-sha1) and SHA-1 MACs,
# and the one CloudFormation assigns when SecurityPolicyName is absent.
WEAK_TRANSFER_POLICIES = ("TransferSecurityPolicy-2018-11",)
TRANSFER_DEFAULT_POLICY = "TransferSecurityPolicy-2018-11"


@rule("DP-TransferNotPublic", clause=1, severity="error", types=[TRANSFER_SERVER],
      title="Transfer Family servers use a VPC endpoint",
      rationale="Clause 1: network protection controls deny access to unauthorized IP addresses. "
                "A PUBLIC endpoint (the default when EndpointType is absent) takes connections "
                "from any address on the internet with no security group in front of it. A VPC "
                "endpoint sits in our subnets, where security groups decide who may connect, "
                "also when Elastic IPs (AddressAllocationIds) make it reachable from outside.",
      remediation="transfer.CfnServer(self, 'Sftp', endpoint_type='VPC', "
                  "endpoint_details=transfer.CfnServer.EndpointDetailsProperty(vpc_id=vpc.vpc_id, "
                  "subnet_ids=[s.subnet_id for s in vpc.private_subnets], "
                  "security_group_ids=[partners_sg.security_group_id]), protocols=['SFTP'])")
def transfer_not_public(r, t):
    for path, endpoint in r.values("EndpointType"):
        if isinstance(endpoint, Unknown):
            yield unverifiable(path, f"the server's endpoint type cannot be verified: {endpoint.reason}")
        elif upper(endpoint) not in PRIVATE_TRANSFER_ENDPOINTS:
            shown = "not set, so PUBLIC" if endpoint is ABSENT else as_text(endpoint) or described(endpoint)
            yield violation(path, f"the server has a public endpoint that any address can reach (EndpointType "
                                  f"{shown}); use EndpointType VPC with security groups")


@rule("DP-TransferNoFtp", clause=3, severity="error", types=[TRANSFER_SERVER],
      title="Transfer Family servers do not offer plain FTP",
      rationale="Clause 3: all data in transit over TLS; unsecured channels are disabled. FTP "
                "sends credentials and files in clear text. SFTP (the default when Protocols is "
                "absent) and FTPS encrypt both.",
      remediation="transfer.CfnServer(self, 'Sftp', protocols=['SFTP'])  # or ['SFTP', 'FTPS'] with a certificate")
def transfer_no_ftp(r, t):
    for path, protocol in r.values("Protocols.*"):
        if isinstance(protocol, Unknown):
            yield unverifiable(path, f"the server's protocols cannot be verified: {protocol.reason}")
        elif upper(protocol) == "FTP":
            yield violation(path, "the server offers plain FTP, which sends passwords and files unencrypted; "
                                  "use SFTP or FTPS")


@rule("DP-TransferLogging", clause=9, severity="error", types=[TRANSFER_SERVER],
      title="Transfer Family servers log to CloudWatch Logs",
      rationale="Clause 9: logs of access to applications and data. A server logs sessions and "
                "file operations only to the log groups in StructuredLogDestinations or through "
                "a LoggingRole (legacy per-server log group); with neither (the default) it logs "
                "nothing.",
      remediation="transfer.CfnServer(self, 'Sftp', structured_log_destinations=[log_group.log_group_arn], ...)")
def transfer_logging(r, t):
    destinations = [_any_set(v, t) for _, v in r.values("StructuredLogDestinations")]
    roles = [_any_set([v], t) for _, v in r.values("LoggingRole")]
    if all(d is True for d in destinations) or all(v is True for v in roles):
        return
    doubt = next((v for v in destinations + roles if isinstance(v, Unknown)), None)
    if doubt is not None:
        yield unverifiable("Properties/StructuredLogDestinations",
                           f"cannot tell whether the server logs: {doubt.reason}")
    else:
        yield violation("Properties/StructuredLogDestinations",
                        "the server logs nothing: set StructuredLogDestinations (log group ARNs) or a LoggingRole")


def _any_set(items: Any, tpl) -> bool | Unknown:
    """Does a list (one variant of a property) hold a value that is set whatever the template's
    parameters? Unknown when the only candidates cannot be known."""
    if isinstance(items, Unknown):
        return items
    if not isinstance(items, list):
        return False if items is ABSENT else Unknown("a list is required here")
    doubt: Unknown | None = None
    for item in items:
        values = alternatives(item, tpl)
        unknown = next((v for v in values if isinstance(v, Unknown)), None)
        if unknown is not None:
            doubt = doubt or unknown
        elif values and all(v is not ABSENT and v is not None and v != "" for v in values):
            return True
    return doubt if doubt is not None else False


@rule("DP-TransferSecurityPolicy", clause=3, severity="error", types=[TRANSFER_SERVER],
      title="Transfer Family servers use a security policy without SHA-1",
      rationale="Clause 3 asks for encryption in transit that holds. TransferSecurityPolicy-2018-11 "
                "still offers SHA-1 key exchange (diffie-hellman-group14-sha1) and SHA-1 MACs, "
                "and it is what CloudFormation assigns when SecurityPolicyName is absent (the "
                "console and API default to TransferSecurityPolicy-2024-01). Other policies "
                "pass; the 2020-06 generation still accepts ssh-rsa host keys and is best "
                "replaced too.",
      remediation="transfer.CfnServer(self, 'Sftp', security_policy_name='TransferSecurityPolicy-2024-01', ...)")
def transfer_security_policy(r, t):
    for path, name in r.values("SecurityPolicyName"):
        if isinstance(name, Unknown):
            yield unverifiable(path, f"the server's security policy cannot be verified: {name.reason}")
        elif name is ABSENT:
            yield violation(path, f"no SecurityPolicyName: CloudFormation gives the server {TRANSFER_DEFAULT_POLICY}, "
                                  f"which allows SHA-1 key exchange and MACs; set TransferSecurityPolicy-2024-01 "
                                  f"or later")
        elif not isinstance(name, str):
            yield violation(path, f"SecurityPolicyName is {described(name)}, not a policy name: set "
                                  f"TransferSecurityPolicy-2024-01 or later")
        elif (as_text(name) or "").strip() in WEAK_TRANSFER_POLICIES:
            yield violation(path, f"{as_text(name)} allows SHA-1 key exchange and MACs; set "
                                  f"TransferSecurityPolicy-2024-01 or later")
