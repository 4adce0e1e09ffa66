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
from ..engine.values import ABSENT, Unknown, as_text
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
