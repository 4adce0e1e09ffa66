"""APIs reachable from the internet (clause 1): API Gateway REST, HTTP and WebSocket APIs, OpenAPI
definitions, Lambda function URLs and AppSync.

Clause 1: "All data requests are only available to authenticated users." An API key identifies a
client application, not a user, so it never counts as authentication here. CORS preflight
(OPTIONS) is exempt: browsers send it without credentials by design.
"""
from __future__ import annotations

import json
from typing import Any, Iterator

from ..engine.checks import expand_ifs
from ..engine.findings import Outcome, unverifiable, violation
from ..engine.values import ABSENT, Unknown, alternatives, as_bool, as_text, is_literal
from . import rule

REST_METHOD = "AWS::ApiGateway::Method"
REST_API = "AWS::ApiGateway::RestApi"
V2_API = "AWS::ApiGatewayV2::Api"
V2_ROUTE = "AWS::ApiGatewayV2::Route"

REST_AUTH = {"AWS_IAM", "CUSTOM", "COGNITO_USER_POOLS"}
V2_AUTH = {"AWS_IAM", "CUSTOM", "JWT"}


def upper_text(value: Any) -> str | None:
    text = as_text(value)
    return text.strip().upper() if text is not None else None


def auth_outcomes(r, path: str, good: set[str], what: str,
                  problem: str = "needs no authorization") -> Iterator[Outcome]:
    """Every value of the authorization type at `path` must be one of `good` (absent is NONE)."""
    for prop_path, value in r.values(path):
        if isinstance(value, Unknown):
            yield unverifiable(prop_path, f"{what} may not require authorization (cannot verify: {value.reason})")
        elif upper_text(value) not in good:
            shown = "NONE" if value is ABSENT else as_text(value)
            yield violation(prop_path, f"{what} {problem} ({path} {shown})")


# ---------------------------------------------------------------- API Gateway REST APIs

@rule("DP-ApiGatewayMethodAuth", clause=1, severity="error", types=[REST_METHOD],
      title="API Gateway methods require authorization",
      rationale="Clause 1: all data requests are only available to authenticated users. A REST "
                "API method with AuthorizationType NONE (the default when absent) answers anyone; "
                "an API key is not authentication. OPTIONS methods (CORS preflight) are exempt.",
      remediation="apigw.RestApi(self, 'Api', default_method_options=apigw.MethodOptions("
                  "authorizer=apigw.CognitoUserPoolsAuthorizer(self, 'Auth', cognito_user_pools=[pool]), "
                  "authorization_type=apigw.AuthorizationType.COGNITO))")
def api_gateway_method_auth(r, t):
    outcomes = []
    for method_path, method in r.values("HttpMethod"):
        if upper_text(method) == "OPTIONS":
            continue
        for o in auth_outcomes(r, "AuthorizationType", REST_AUTH, f"the {_method_name(method)} method"):
            if o.status == "violation" and isinstance(method, Unknown):
                o = unverifiable(method_path, f"the method needs no authorization and may not be a "
                                              f"CORS preflight (cannot verify: {method.reason})")
            outcomes.append(o)
    yield from outcomes


def _method_name(method: Any) -> str:
    return (None if isinstance(method, Unknown) else upper_text(method)) or "HTTP"


# ---------------------------------------------------------------- API Gateway HTTP and WebSocket APIs

def _api_protocols(route) -> set | Unknown:
    """The protocol types ("HTTP", "WEBSOCKET") of the API a route belongs to."""
    protocols: set = set()
    for _, api_id in route.values("ApiId"):
        api = route.template.resource_of(api_id, V2_API)
        if api is None:
            return Unknown("the route's API is not defined in the scanned templates")
        for _, protocol in api.values("ProtocolType"):
            if isinstance(protocol, Unknown):
                return protocol
            protocols.add(upper_text(protocol))
    return protocols


def _route_needs_auth(route, key: Any) -> bool | Unknown:
    """Must this route carry an authorizer? WebSocket APIs accept an authorizer only on $connect,
    which guards the whole connection, so their other routes are exempt; OPTIONS routes are CORS
    preflight."""
    if isinstance(key, Unknown):
        return Unknown(f"its route key cannot be known: {key.reason}")
    text = (as_text(key) or "").strip()
    if text == "$connect":
        return True
    if text == "$disconnect" or text.upper().startswith("OPTIONS "):
        return False
    if " " in text:  # "GET /items": an HTTP API route
        return True
    protocols = _api_protocols(route)  # "$default" and custom WebSocket actions
    if isinstance(protocols, Unknown):
        return Unknown(f"only WebSocket APIs may leave it open, and its API cannot be identified: "
                       f"{protocols.reason}")
    return protocols != {"WEBSOCKET"}


@rule("DP-ApiGatewayV2RouteAuth", clause=1, severity="error", types=[V2_ROUTE, V2_API],
      title="API Gateway HTTP routes and WebSocket connections require authorization",
      rationale="Clause 1: all data requests are only available to authenticated users. HTTP API "
                "routes need an authorizer (JWT, Lambda or IAM) except OPTIONS preflight routes. A "
                "WebSocket API authorizes once, on $connect, so its $connect route needs one and "
                "it must exist (without it anyone can connect); its other routes cannot carry an "
                "authorizer and are exempt. A quick-create HTTP API (Target) makes a $default "
                "route that has none.",
      remediation="apigwv2.HttpApi(self, 'Api', default_authorizer=authorizers.HttpJwtAuthorizer("
                  "'Jwt', issuer_url, jwt_audience=[client_id]))\n"
                  "apigwv2.WebSocketApi(self, 'Ws', connect_route_options=apigwv2.WebSocketRouteOptions("
                  "integration=connect_integration, authorizer=authorizers.WebSocketLambdaAuthorizer("
                  "'Auth', auth_handler)))")
def api_gateway_v2_route_auth(r, t):
    if r.type == V2_API:
        yield from _api_outcomes(r)
        return
    outcomes = []
    for key_path, key in r.values("RouteKey"):
        needs = _route_needs_auth(r, key)
        if needs is False:
            continue
        for o in auth_outcomes(r, "AuthorizationType", V2_AUTH, f"route {_show_key(key)}"):
            if o.status == "violation" and isinstance(needs, Unknown):
                o = unverifiable(key_path, f"route {_show_key(key)} needs no authorization; {needs.reason}")
            outcomes.append(o)
    yield from outcomes


def _show_key(key: Any) -> str:
    return "(key chosen at deploy time)" if isinstance(key, Unknown) else (as_text(key) or "?")


def _api_outcomes(api) -> Iterator[Outcome]:
    for path, target in api.values("Target"):
        if isinstance(target, Unknown) or target is not ABSENT:
            yield violation(path, "quick create (Target) makes a $default route that anyone can call")
    for path, protocol in api.values("ProtocolType"):
        if upper_text(protocol) != "WEBSOCKET":
            continue
        connects = [route for route in api.template.app.referrers(api, V2_ROUTE)
                    if any(key == "$connect" for _, key in route.values("RouteKey"))]
        if not connects:
            yield violation(path, "the WebSocket API has no $connect route, so anyone can connect "
                                  "without authorization")


# ---------------------------------------------------------------- OpenAPI definitions

OPERATIONS = ("get", "put", "post", "delete", "patch", "head", "trace", "x-amazon-apigateway-any-method")


@rule("DP-ApiGatewayOpenApiAuth", clause=1, severity="error", types=[REST_API, V2_API],
      title="Operations of imported OpenAPI definitions require authorization",
      rationale="Clause 1: all data requests are only available to authenticated users. APIs "
                "imported from an OpenAPI definition (Body) get their methods from the "
                "definition, not from Method or Route resources, so each operation (except "
                "OPTIONS) must name a security scheme that API Gateway enforces: one with "
                "x-amazon-apigateway-authorizer or x-amazon-apigateway-authtype. Plain API-key "
                "schemes and empty requirements ({}) leave the operation open. A definition kept "
                "in S3 (BodyS3Location) cannot be read and is unverifiable.",
      remediation="In the definition: securitySchemes/securityDefinitions: {sigv4: {type: apiKey, "
                  "name: Authorization, in: header, x-amazon-apigateway-authtype: awsSigv4}} and "
                  "security: [{sigv4: []}] at the top level or on each operation; with CDK, "
                  "apigw.SpecRestApi(self, 'Api', api_definition=apigw.ApiDefinition.from_inline(spec))")
def api_gateway_openapi_auth(r, t):
    for path, location in r.values("BodyS3Location"):
        if location is not ABSENT:
            yield unverifiable(path, "the OpenAPI definition is in S3 (BodyS3Location), so its "
                                     "authorization cannot be checked")
    outcomes = []
    for path, body in r.values("Body"):
        if body is ABSENT:
            continue
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError:
                outcomes.append(unverifiable(path, "the OpenAPI definition is a string that is not JSON"))
                continue
        for doc in expand_ifs(body, t) if not isinstance(body, Unknown) else [body]:
            if isinstance(doc, Unknown):
                outcomes.append(unverifiable(path, f"the OpenAPI definition cannot be read: {doc.reason}"))
            elif not isinstance(doc, dict):
                outcomes.append(unverifiable(path, "the OpenAPI definition is not a mapping"))
            else:
                outcomes.extend(_openapi_outcomes(path, doc))
    yield from outcomes


def _openapi_outcomes(path: str, doc: dict) -> Iterator[Outcome]:
    components = doc.get("components")
    schemes = doc.get("securityDefinitions") or (components.get("securitySchemes")
                                                 if isinstance(components, dict) else None) or {}
    paths = doc.get("paths")
    if not isinstance(paths, dict):
        return
    for route, item in paths.items():
        where = f"{path}/paths/{_pointer(route)}"
        if not isinstance(item, dict):
            yield unverifiable(where, f"path {route} is not a mapping")
            continue
        for method, operation in item.items():
            if not isinstance(method, str) or method.lower() not in OPERATIONS:
                continue
            name = "ANY" if method.lower() == "x-amazon-apigateway-any-method" else method.upper()
            if not isinstance(operation, dict):
                yield unverifiable(f"{where}/{method}", f"{name} {route} is not a mapping")
                continue
            problem = _operation_problem(operation, doc.get("security"), schemes)
            if problem:
                yield violation(f"{where}/{method}", f"{name} {route} {problem}")


def _pointer(key: Any) -> str:
    """A key as one JSON-pointer segment: "/items" becomes "~1items"."""
    return str(key).replace("~", "~0").replace("/", "~1")


def _operation_problem(operation: dict, top_security: Any, schemes: Any) -> str | None:
    """Why an operation can be called without authorization, or None."""
    extension = operation.get("x-amazon-apigateway-auth")
    if isinstance(extension, dict):
        kind = upper_text(extension.get("type"))
        if kind == "AWS_IAM":
            return None
        if kind == "NONE":
            return "needs no authorization (x-amazon-apigateway-auth type NONE)"
    requirements = operation.get("security", top_security)
    if not isinstance(requirements, list) or not requirements:
        return "needs no authorization (no security requirement)"
    for requirement in requirements:
        if not isinstance(requirement, dict) or not requirement:
            return "can be called without authorization (an empty security requirement)"
        if not any(_enforced(schemes, name) for name in requirement):
            return (f"is protected only by {', '.join(map(str, requirement))}, which API Gateway does not "
                    "enforce as an authorizer")
    return None


def _enforced(schemes: Any, name: Any) -> bool:
    """Is the security scheme one that API Gateway enforces (an authorizer or IAM)?"""
    scheme = schemes.get(name) if isinstance(schemes, dict) else None
    return isinstance(scheme, dict) and ("x-amazon-apigateway-authorizer" in scheme
                                         or "x-amazon-apigateway-authtype" in scheme)


# ---------------------------------------------------------------- Lambda function URLs

@rule("DP-LambdaUrlAuth", clause=1, severity="error", types=["AWS::Lambda::Url"],
      title="Lambda function URLs require IAM authorization",
      rationale="Clause 1: all data requests are only available to authenticated users. A "
                "function URL with AuthType NONE is a public HTTPS endpoint anyone can call; "
                "AWS_IAM requires signed requests.",
      remediation="fn.add_function_url(auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)")
def lambda_url_auth(r, t):
    yield from auth_outcomes(r, "AuthType", {"AWS_IAM"}, "the function URL")


# ---------------------------------------------------------------- AppSync

@rule("DP-AppSyncAuth", clause=1, severity="error", types=["AWS::AppSync::GraphQLApi"],
      title="AppSync APIs authenticate users, not API keys",
      rationale="Clause 1: all data requests are only available to authenticated users. An AppSync "
                "API key is a shared secret for unauthenticated access; the default and every "
                "additional authorization mode must be IAM, Cognito user pools, OpenID Connect or "
                "a Lambda authorizer.",
      remediation="appsync.GraphqlApi(self, 'Api', ..., authorization_config=appsync.AuthorizationConfig("
                  "default_authorization=appsync.AuthorizationMode(authorization_type="
                  "appsync.AuthorizationType.USER_POOL, user_pool_config=appsync.UserPoolConfig(user_pool=pool))))")
def appsync_auth(r, t):
    good = {"AWS_IAM", "AMAZON_COGNITO_USER_POOLS", "OPENID_CONNECT", "AWS_LAMBDA"}
    outcomes = list(auth_outcomes(r, "AuthenticationType", good, "the API", "does not authenticate users"))
    for path, mode in r.values("AdditionalAuthenticationProviders.*.AuthenticationType"):
        if isinstance(mode, Unknown):
            outcomes.append(unverifiable(path, f"an additional authorization mode cannot be known: {mode.reason}"))
        elif mode is not ABSENT and upper_text(mode) not in good:
            outcomes.append(violation(path, f"an additional authorization mode ({as_text(mode)}) does not "
                                            "authenticate users"))
    yield from outcomes


# ---------------------------------------------------------------- REST stage method settings

REST_STAGE = "AWS::ApiGateway::Stage"
REST_DEPLOYMENT = "AWS::ApiGateway::Deployment"
# The keys of a stage (or a deployment's StageDescription) that method-setting rules read; only
# these are expanded, so an Fn::If elsewhere on the resource does not multiply the variants.
_SETTING_KEYS = ("MethodSettings", "CacheClusterEnabled", "LoggingLevel", "CachingEnabled",
                 "CacheDataEncrypted")


class StageSettings:
    """One variant of a REST stage's settings: the stage (or StageDescription) with every Fn::If
    decided. `defaults` are the entries for all methods (HttpMethod "*", ResourcePath "/*"), with
    a deployment's StageDescription itself first (its LoggingLevel, CachingEnabled and
    CacheDataEncrypted apply to all methods); `overrides` are the per-method entries; `unsure`
    the entries whose method or path is chosen at deploy time. Entries are (path, mapping)."""

    def __init__(self, tpl, base: str, node: dict, deployment: bool):
        self.tpl = tpl
        self.base = base
        self.node = node
        self.defaults: list[tuple[str, dict]] = [(base, node)] if deployment else []
        self.overrides: list[tuple[str, dict]] = []
        self.unsure: list[tuple[str, dict, Unknown]] = []
        self.problems: list[tuple[str, Unknown]] = []
        entries = node.get("MethodSettings", ABSENT)
        if entries is ABSENT:
            return
        if not isinstance(entries, list):
            self.problems.append((f"{base}/MethodSettings", Unknown("MethodSettings is not a list")))
            return
        for index, entry in enumerate(entries):
            path = f"{base}/MethodSettings/{index}"
            if not isinstance(entry, dict):
                self.problems.append((path, Unknown("a method setting is not a mapping")))
                continue
            scope = self._all_methods(entry)
            if isinstance(scope, Unknown):
                self.unsure.append((path, entry, scope))
            elif scope:
                self.defaults.append((path, entry))
            else:
                self.overrides.append((path, entry))

    def _all_methods(self, entry: dict) -> bool | Unknown:
        methods = self.values(entry, "HttpMethod")
        paths = self.values(entry, "ResourcePath")
        for value in methods + paths:
            if isinstance(value, Unknown):
                return Unknown(f"its method or resource path is chosen at deploy time ({value.reason})")
        return all(as_text(m) == "*" for m in methods) and all(as_text(p) == "/*" for p in paths)

    def values(self, entry: dict, key: str) -> list:
        return alternatives(entry.get(key, ABSENT), self.tpl)

    def default_values(self, key: str) -> tuple[str, list]:
        """Where the all-methods value of `key` is set, and its values (ABSENT when unset); the
        last entry that sets it wins, as CloudFormation applies them in order."""
        where = f"{self.defaults[-1][0]}/{key}" if self.defaults else f"{self.base}/MethodSettings"
        found = (where, [ABSENT])
        for path, entry in self.defaults:
            if key in entry:
                found = (f"{path}/{key}", self.values(entry, key))
        return found

    def label(self, entry: dict) -> str:
        """"GET /items" for a per-method entry."""
        method = self.values(entry, "HttpMethod")
        path = self.values(entry, "ResourcePath")
        shown = [as_text(v[0]) if len(v) == 1 and is_literal(v[0]) else None for v in (method, path)]
        route = shown[1][1:].replace("~1", "/") if shown[1] else "?"  # "/~1items" is /items
        return f"{shown[0] or '?'} {route if route.startswith(('/', '?')) else '/' + route}"


def stage_settings(r) -> list[StageSettings | tuple[str, Unknown]]:
    """Every variant of the method settings of a REST stage, or of the stage a deployment
    creates (StageName with StageDescription); [] for a deployment that creates no stage. A
    variant that cannot be read comes as (path, Unknown)."""
    key = ("stage_settings",)
    if key in r.cache:
        return r.cache[key]
    out: list = []
    if r.type == REST_DEPLOYMENT:
        if any(is_set(v) for _, v in r.values("StageName")):
            for path, node in r.values("StageDescription"):
                out.extend(_setting_variants(r, path, {} if node is ABSENT else node, True))
    else:
        out.extend(_setting_variants(r, "Properties", r.props, False))
    r.cache[key] = out
    return out


def _setting_variants(r, base: str, node: Any, deployment: bool) -> list:
    if isinstance(node, Unknown):
        return [(base, node)]
    if not isinstance(node, dict):
        return [(base, Unknown("the stage description is not a mapping"))]
    relevant = {k: node[k] for k in _SETTING_KEYS if k in node}
    out: list = []
    for variant in expand_ifs(relevant, r.template):
        if isinstance(variant, Unknown):
            out.append((base, variant))
        else:
            out.append(StageSettings(r.template, base, variant, deployment))
    return out


def is_set(value: Any) -> bool:
    return value is not ABSENT and value is not None and value != ""


def _bools(values: list, default: bool, wrong: Any) -> list:
    """Each value as True, False (ABSENT is `default`), or Unknown; a value that is not a
    boolean is `wrong`, so that a wrong type never passes."""
    out: list = []
    for v in values:
        if isinstance(v, Unknown):
            out.append(v)
        elif v is ABSENT:
            out.append(default)
        else:
            b = as_bool(v)
            out.append(b if b is not None else
                       wrong if wrong is not None else Unknown(f"{as_text(v) or type(v).__name__} is not a boolean"))
    return out


def may_be_true(values: list, default: bool) -> bool | Unknown:
    """True when some value is true; Unknown when none is but some cannot be known."""
    flags = _bools(values, default, None)
    if True in flags:
        return True
    return next((f for f in flags if isinstance(f, Unknown)), False)


def must_be_true(values: list, default: bool) -> bool | Unknown:
    """False when some value is not true (or not a boolean); Unknown when some cannot be known;
    else True."""
    flags = _bools(values, default, False)
    if False in flags:
        return False
    return next((f for f in flags if isinstance(f, Unknown)), True)


def _unreadable(path: str, problem: Unknown, what: str) -> Outcome:
    return unverifiable(path, f"cannot tell whether {what}: {problem.reason}")


# ---------------------------------------------------------------- REST stage cache encryption

@rule("DP-ApiGatewayCacheEncrypted", clause=7, severity="error", types=[REST_STAGE, REST_DEPLOYMENT],
      title="API Gateway REST stage caches are encrypted",
      rationale="Clause 7: all data at rest must be encrypted. A stage with a cache cluster "
                "(CacheClusterEnabled) keeps API responses, personal data among them, in the "
                "cache for up to an hour; API Gateway encrypts them only when the method setting "
                "says CacheDataEncrypted true, and its default is false. Enabling the cache "
                "caches GET methods by default, so the all-methods setting (HttpMethod \"*\", "
                "ResourcePath \"/*\", or a deployment's StageDescription) must encrypt unless it "
                "turns caching off, and every per-method setting that turns CachingEnabled on "
                "must encrypt (or inherit encryption from the all-methods setting). A stage "
                "without a cache cluster and without CachingEnabled caches nothing and passes.",
      remediation="apigw.RestApi(self, 'Api', deploy_options=apigw.StageOptions("
                  "cache_cluster_enabled=True, caching_enabled=True, cache_data_encrypted=True, "
                  "method_options={'/items/GET': apigw.MethodDeploymentOptions(caching_enabled=True, "
                  "cache_data_encrypted=True)}))")
def api_gateway_cache_encrypted(r, t):
    outcomes: list = []
    for variant in stage_settings(r):
        if isinstance(variant, tuple):
            outcomes.append(_unreadable(variant[0], variant[1], "the stage caches unencrypted responses"))
        else:
            outcomes.extend(_cache_outcomes(variant))
    yield from outcomes


def _cache_outcomes(s: StageSettings) -> Iterator[Outcome]:
    for path, problem in s.problems:
        yield _unreadable(path, problem, "the stage caches unencrypted responses")
    if s.problems:
        return
    cluster_path = f"{s.base}/CacheClusterEnabled"
    cluster = may_be_true(s.values(s.node, "CacheClusterEnabled"), False)
    caching_path, caching = s.default_values("CachingEnabled")
    encrypted_path, encrypted = s.default_values("CacheDataEncrypted")
    # With a cache cluster, GET methods are cached unless the all-methods setting says otherwise.
    if isinstance(cluster, Unknown):
        default_caches = True if may_be_true(caching, False) is True else \
            False if may_be_true(caching, True) is False else cluster
    else:
        default_caches = may_be_true(caching, cluster)
    default_encrypts = must_be_true(encrypted, False)
    if default_caches is not False and default_encrypts is False:
        message = ("the stage caches responses unencrypted: set CacheDataEncrypted true for all methods "
                   "(HttpMethod \"*\", ResourcePath \"/*\"); API Gateway's default is false")
        if isinstance(default_caches, Unknown):
            where = cluster_path if default_caches is cluster else caching_path
            yield unverifiable(where, f"{message} (whether it caches cannot be known: {default_caches.reason})")
        else:
            yield violation(encrypted_path, message)
    elif default_caches is not False and isinstance(default_encrypts, Unknown):
        yield unverifiable(encrypted_path, f"cannot tell whether the stage's cache is encrypted: "
                                           f"{default_encrypts.reason}")
    for path, entry in s.overrides:
        if "CachingEnabled" not in entry:
            continue
        caches = may_be_true(s.values(entry, "CachingEnabled"), False)
        if caches is False:
            continue
        own = s.values(entry, "CacheDataEncrypted") if "CacheDataEncrypted" in entry else encrypted
        verdict = must_be_true(own, False)
        what = f"the method setting for {s.label(entry)}"
        if verdict is False:
            message = f"{what} caches responses unencrypted: set CacheDataEncrypted true (default false)"
            if isinstance(caches, Unknown):
                yield unverifiable(f"{path}/CachingEnabled", f"{message} (whether it caches cannot be known: "
                                                             f"{caches.reason})")
            else:
                yield violation(f"{path}/CacheDataEncrypted", message)
        elif isinstance(verdict, Unknown):
            yield unverifiable(f"{path}/CacheDataEncrypted",
                               f"cannot tell whether {what} encrypts its cache: {verdict.reason}")
    for path, entry, scope in s.unsure:
        if may_be_true(s.values(entry, "CachingEnabled"), False) is not False \
                and must_be_true(s.values(entry, "CacheDataEncrypted") if "CacheDataEncrypted" in entry
                                 else encrypted, False) is not True:
            yield unverifiable(path, f"a method setting may cache responses unencrypted; {scope.reason}")


# ---------------------------------------------------------------- AppSync logging and caches

GRAPHQL_API = "AWS::AppSync::GraphQLApi"
EVENT_API = "AWS::AppSync::Api"
APPSYNC_CACHE = "AWS::AppSync::ApiCache"
APPSYNC_LOG_LEVELS = ("ERROR", "INFO", "DEBUG", "ALL")


@rule("DP-AppSyncLogging", clause=9, severity="error", types=[GRAPHQL_API, EVENT_API],
      title="AppSync APIs log to CloudWatch Logs",
      rationale="Clause 9: logs of access to applications, to detect and investigate security "
                "events. A GraphQL API logs only with a LogConfig that names the role AppSync "
                "writes with (CloudWatchLogsRoleArn) and a FieldLogLevel other than NONE (ERROR, "
                "INFO, DEBUG or ALL); without LogConfig (the default) nothing is logged. An Event "
                "API (AWS::AppSync::Api) logs likewise through EventConfig.LogConfig, with a "
                "LogLevel other than NONE.",
      remediation="appsync.GraphqlApi(self, 'Api', ..., log_config=appsync.LogConfig("
                  "field_log_level=appsync.FieldLogLevel.ERROR, retention=logs.RetentionDays.ONE_YEAR))\n"
                  "appsync.EventApi(self, 'Events', ..., log_config=appsync.AppSyncLogConfig("
                  "field_log_level=appsync.AppSyncFieldLogLevel.ERROR))")
def appsync_logging(r, t):
    base, level_key = ("EventConfig.LogConfig", "LogLevel") if r.type == EVENT_API else ("LogConfig", "FieldLogLevel")
    what = "the Event API" if r.type == EVENT_API else "the API"
    outcomes: list = []
    for path, level in r.values(f"{base}.{level_key}"):
        if isinstance(level, Unknown):
            outcomes.append(unverifiable(path, f"{what}'s log level cannot be verified: {level.reason}"))
        elif upper_text(level) not in APPSYNC_LOG_LEVELS:
            shown = f"no {base.replace('.', '/')}" if level is ABSENT else f"{level_key} {as_text(level)}"
            outcomes.append(violation(path, f"{what} writes no logs ({shown}); set {level_key} ERROR or "
                                            f"higher and CloudWatchLogsRoleArn"))
    if outcomes:
        yield from outcomes
        return
    for path, role in r.values(f"{base}.CloudWatchLogsRoleArn"):
        if isinstance(role, Unknown):
            yield unverifiable(path, f"{what}'s logging role cannot be verified: {role.reason}")
        elif not is_set(role):
            yield violation(path, f"{what} has a log level but no CloudWatchLogsRoleArn, so AppSync "
                                  f"cannot write its logs")


def _cache_flag(r, prop: str, problem: str) -> Iterator[Outcome]:
    for path, value in r.values(prop):
        if isinstance(value, Unknown):
            yield unverifiable(path, f"{prop} cannot be verified: {value.reason}")
        elif as_bool(value) is not True:
            shown = "not set" if value is ABSENT else as_text(value) or "not a boolean"
            yield violation(path, f"{problem} ({prop} {shown}); set it true. Caches created while "
                                  f"AWS's default was false keep that setting: it cannot be changed "
                                  f"after creation")


@rule("DP-AppSyncCacheEncrypted", clause=7, severity="error", types=[APPSYNC_CACHE],
      title="AppSync API caches are encrypted at rest",
      rationale="Clause 7: all data at rest must be encrypted. An AppSync cache holds resolver "
                "results, personal data among them. AtRestEncryptionEnabled defaulted to false "
                "and cannot be changed after the cache is created; AWS now encrypts new caches "
                "regardless and has deprecated the flag, but the template cannot tell when its "
                "cache was created, and AWS Config still reports a cache with the flag false as "
                "non-compliant. So the flag must say true.",
      remediation="appsync.CfnApiCache(self, 'Cache', api_id=api.api_id, api_caching_behavior="
                  "'FULL_REQUEST_CACHING', type='SMALL', ttl=300, at_rest_encryption_enabled=True, "
                  "transit_encryption_enabled=True)")
def appsync_cache_encrypted(r, t):
    yield from _cache_flag(r, "AtRestEncryptionEnabled", "the API cache may keep its data unencrypted")


@rule("DP-AppSyncCacheTls", clause=3, severity="error", types=[APPSYNC_CACHE],
      title="AppSync API caches encrypt data in transit",
      rationale="Clause 3: all data in transit over TLS. TransitEncryptionEnabled decides whether "
                "AppSync talks to its cache over TLS; it defaulted to false and cannot be changed "
                "after creation. AWS now encrypts new caches regardless and has deprecated the "
                "flag, but the template cannot tell when its cache was created, so the flag must "
                "say true.",
      remediation="appsync.CfnApiCache(self, 'Cache', api_id=api.api_id, api_caching_behavior="
                  "'FULL_REQUEST_CACHING', type='SMALL', ttl=300, at_rest_encryption_enabled=True, "
                  "transit_encryption_enabled=True)")
def appsync_cache_tls(r, t):
    yield from _cache_flag(r, "TransitEncryptionEnabled", "the API may reach its cache without TLS")
