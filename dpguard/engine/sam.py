"""SAM templates judged as what they deploy.

A template with `Transform: AWS::Serverless-2016-10-31` is expanded here with AWS's own
translator (the `aws-sam-translator` library, which the SAM transform of CloudFormation runs),
offline: no AWS call, no boto3 session, the translator's bundled map of managed policies. The
rules then judge the generated resources, and `name_sam_resources` makes each finding name the
SAM resource and SAM property that the developer wrote (`MyFunction`, `AWS::Serverless::Function`,
`Properties/Policies`) rather than the generated ones (`MyFunctionRole`).

What is chosen at deploy time stays unknown: every parameter is handed to the translator as
CloudFormation's own placeholder for a value not yet known, so `Ref`s to parameters survive in
the generated template and the engine judges them as it judges any other (unverifiable unless
they have AllowedValues or the defaults are trusted). Only a few properties that SAM must read
as literals and that protect no data (an alias name, a deployment type, a layer's retention)
are given their parameter's default.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
MARK = "dpguard:sam"  # Metadata key put on each SAM resource; SAM copies Metadata to what it makes
PLACEHOLDER = "{{IntrinsicFunction:dpguard/%s}}"  # CloudFormation's placeholder: SAM leaves it unresolved
PSEUDO_PARAMETERS = ("AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition",
                     "AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix")
# Code and definitions that `sam build`/`sam package` upload: a local path becomes an S3 URI
# that names it (SAM accepts only S3 locations). What is in S3 is not judged (e.g. an OpenAPI
# definition in a file is unverifiable, as BodyS3Location is).
LOCAL_FILE_BUCKET = "dpguard-local-file"
# A Serverless Application Repository app: SAM would ask the repository for its template. Its
# nested stack is given a URL that names no scanned template, so it is reported unverifiable.
SAR_TEMPLATE_URL = "https://serverless-application-repository.invalid/application"
IMPLICIT_APIS = {"ServerlessRestApi": "AWS::Serverless::Api", "ServerlessHttpApi": "AWS::Serverless::HttpApi"}

# The resource SAM makes for each SAM type, under the SAM resource's own logical id (a layer's
# gets a hash appended).
PRIMARY = {
    "AWS::Serverless::Function": "AWS::Lambda::Function",
    "AWS::Serverless::Api": "AWS::ApiGateway::RestApi",
    "AWS::Serverless::HttpApi": "AWS::ApiGatewayV2::Api",
    "AWS::Serverless::WebSocketApi": "AWS::ApiGatewayV2::Api",
    "AWS::Serverless::SimpleTable": "AWS::DynamoDB::Table",
    "AWS::Serverless::StateMachine": "AWS::StepFunctions::StateMachine",
    "AWS::Serverless::LayerVersion": "AWS::Lambda::LayerVersion",
    "AWS::Serverless::Application": "AWS::CloudFormation::Stack",
    "AWS::Serverless::GraphQLApi": "AWS::AppSync::GraphQLApi",
}

# (SAM type, generated type) -> {generated property: the SAM property it comes from}. "*" is
# any other property. A property named here is reported without the path below it, whose
# shape differs in SAM (a role's Policies/0/PolicyDocument/... is the function's Policies).
_ROLE = {"*": "Policies", "AssumeRolePolicyDocument": "AssumeRolePolicyDocument",
         "PermissionsBoundary": "PermissionsBoundary", "Tags": "Tags", "Path": "RolePath"}
SAM_PROPERTIES: dict[tuple[str, str], dict[str, str]] = {
    ("AWS::Serverless::Function", "AWS::Lambda::Function"): {
        "Code": "CodeUri", "DeadLetterConfig": "DeadLetterQueue", "TracingConfig": "Tracing"},
    ("AWS::Serverless::Function", "AWS::IAM::Role"): _ROLE,
    ("AWS::Serverless::Function", "AWS::Lambda::Url"): {"*": "FunctionUrlConfig"},
    ("AWS::Serverless::Function", "AWS::Lambda::Permission"): {"*": "FunctionUrlConfig"},
    ("AWS::Serverless::Function", "AWS::Lambda::EventInvokeConfig"): {"*": "EventInvokeConfig"},
    ("AWS::Serverless::Function", "AWS::Lambda::Version"): {"*": "AutoPublishAlias"},
    ("AWS::Serverless::Function", "AWS::Lambda::Alias"): {"*": "AutoPublishAlias"},
    ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"): {
        "DefinitionString": "Definition", "DefinitionS3Location": "DefinitionUri",
        "LoggingConfiguration": "Logging", "TracingConfiguration": "Tracing", "RoleArn": "Role",
        "StateMachineName": "Name", "StateMachineType": "Type"},
    ("AWS::Serverless::StateMachine", "AWS::IAM::Role"): _ROLE,
    ("AWS::Serverless::SimpleTable", "AWS::DynamoDB::Table"): {
        "KeySchema": "PrimaryKey", "AttributeDefinitions": "PrimaryKey"},
    ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"): {"Content": "ContentUri"},
    ("AWS::Serverless::Api", "AWS::ApiGateway::RestApi"): {"Body": "DefinitionBody", "BodyS3Location": "DefinitionUri"},
    ("AWS::Serverless::Api", "AWS::ApiGateway::Stage"): {"StageName": "StageName"},
    # SAM's deployment also makes a stage named "Stage" unless OpenApiVersion is set
    ("AWS::Serverless::Api", "AWS::ApiGateway::Deployment"): {"*": "OpenApiVersion"},
    ("AWS::Serverless::Api", "AWS::ApiGateway::DomainName"): {"*": "Domain"},
    ("AWS::Serverless::Api", "AWS::ApiGateway::BasePathMapping"): {"*": "Domain"},
    ("AWS::Serverless::Api", "AWS::ApiGateway::Authorizer"): {"*": "Auth"},
    ("AWS::Serverless::Api", "AWS::ApiGateway::UsagePlan"): {"*": "Auth"},
    ("AWS::Serverless::Api", "AWS::ApiGateway::ApiKey"): {"*": "Auth"},
    ("AWS::Serverless::Api", "AWS::Lambda::Permission"): {"*": "Auth"},
    ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api"): {"Body": "DefinitionBody", "BodyS3Location": "DefinitionUri"},
    ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Stage"): {"StageVariables": "StageVariables"},
    ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::DomainName"): {"*": "Domain"},
    ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::ApiMapping"): {"*": "Domain"},
    ("AWS::Serverless::HttpApi", "AWS::Lambda::Permission"): {"*": "Auth"},
    ("AWS::Serverless::Application", "AWS::CloudFormation::Stack"): {"TemplateURL": "Location"},
    ("AWS::Serverless::Connector", "AWS::IAM::ManagedPolicy"): {"*": "Permissions"},
    ("AWS::Serverless::Connector", "AWS::Lambda::Permission"): {"*": "Permissions"},
    ("AWS::Serverless::Connector", "AWS::SQS::QueuePolicy"): {"*": "Permissions"},
    ("AWS::Serverless::Connector", "AWS::SNS::TopicPolicy"): {"*": "Permissions"},
}

NOUNS = {
    "AWS::IAM::Role": "role", "AWS::IAM::ManagedPolicy": "managed policy", "AWS::IAM::Policy": "policy",
    "AWS::Lambda::Function": "function", "AWS::Lambda::Permission": "permission",
    "AWS::Lambda::Url": "function URL", "AWS::Lambda::LayerVersion": "layer version",
    "AWS::ApiGateway::RestApi": "REST API", "AWS::ApiGateway::Stage": "stage",
    "AWS::ApiGateway::Deployment": "deployment (with its stage \"Stage\")",
    "AWS::ApiGatewayV2::Api": "API", "AWS::ApiGatewayV2::Stage": "stage",
    "AWS::DynamoDB::Table": "table", "AWS::StepFunctions::StateMachine": "state machine",
    "AWS::CloudFormation::Stack": "nested stack", "AWS::SQS::Queue": "queue", "AWS::SNS::Topic": "topic",
    "AWS::Logs::LogGroup": "log group",
}


@dataclass
class SamSource:
    """The SAM resource that made a generated resource, as the template writes it."""

    logical_id: str
    resource_type: str
    properties: dict  # as written on the resource
    globals: dict  # the Globals section for its type (Globals.Function, ...)
    implicit: bool = False  # an API SAM makes from the functions' events (ServerlessRestApi)


@dataclass
class Expansion:
    """What `expand` made of a SAM template. `data` is the template to judge: the generated one,
    or the template as written when SAM could not expand it (`problem` says why: each SAM
    resource is then reported unverifiable, by DP-TemplateProcessed)."""

    data: dict
    sources: dict[str, SamSource] = field(default_factory=dict)  # generated logical id -> source
    problem: str | None = None


def is_sam(data: dict) -> bool:
    transform = data.get("Transform")
    return transform == SAM_TRANSFORM or (isinstance(transform, list) and SAM_TRANSFORM in transform)


class SamRejected(Exception):
    """SAM refuses the template: it would not deploy either."""


def expand(data: dict, trust_parameter_defaults: bool = False) -> Expansion:
    """The template `data` with its SAM resources expanded. Raises SamRejected with SAM's
    message when SAM refuses the template as written."""
    parameters = data.get("Parameters") if isinstance(data.get("Parameters"), dict) else {}
    unknown = {name: PLACEHOLDER % name for name in list(parameters) + list(PSEUDO_PARAMETERS)}
    others = [t for t in _transforms(data) if t != SAM_TRANSFORM]
    needed = _auth_parameters(data, parameters)
    try:
        if needed:  # SAM writes the API's security from Auth: a placeholder would read as "no auth"
            raise SamRejected(f"{needed} names a parameter, which SAM must read to write the API's "
                              "security requirements")
        translated = _translate(data, unknown)
    except SamRejected as rejected:
        # SAM reads some values while it expands (an API's custom domain endpoint, usage plans):
        # is a parameter chosen at deploy time what it lacks, or is the template wrong?
        defaults = {name: value for name, value in unknown.items() if name in PSEUDO_PARAMETERS}
        try:
            translated = _translate(data, defaults)  # SAM fills in the parameters' defaults
        except SamRejected as again:
            if others:  # e.g. Fn::ForEach of AWS::LanguageExtensions, which runs before SAM
                names = ", ".join(t if isinstance(t, str) else "a macro" for t in others)
                return Expansion(data, problem=f"SAM cannot expand it before {names} has run: {again}")
            raise again from None
        if not trust_parameter_defaults:
            return Expansion(data, problem="SAM needs a parameter's value, chosen at deploy time, to expand "
                                           f"it: {rejected} (--trust-parameter-defaults judges it with "
                                           "the parameters' defaults)")
    if others:  # SAM removes the Transform section; the other transforms still run at deploy time
        translated["Transform"] = others
    return Expansion(translated, _sources(data, translated))


def _auth_parameters(data: dict, parameters: dict) -> str | None:
    """Where an API's Auth (on the API, an event, or in Globals) refers to a template parameter:
    SAM resolves it to build the OpenAPI security, so it cannot stay unknown."""
    from .template import mentions  # the engine's walk over Ref, GetAtt and Sub

    places: list[tuple[str, Any]] = []
    globals_ = data.get("Globals") if isinstance(data.get("Globals"), dict) else {}
    for section in ("Api", "HttpApi", "WebSocketApi"):
        if isinstance(globals_.get(section), dict):
            places.append((f"Globals.{section}.Auth", globals_[section].get("Auth")))
    resources = data.get("Resources") if isinstance(data.get("Resources"), dict) else {}
    for logical_id, resource in resources.items():
        props = resource.get("Properties") if isinstance(resource, dict) else None
        if not isinstance(props, dict):
            continue
        places.append((f"{logical_id}.Auth", props.get("Auth")))
        events = props.get("Events")
        for name, event in events.items() if isinstance(events, dict) else ():
            event_props = event.get("Properties") if isinstance(event, dict) else None
            if isinstance(event_props, dict):
                places.append((f"{logical_id}.Events.{name}.Properties.Auth", event_props.get("Auth")))
    for where, auth in places:
        if isinstance(auth, dict):  # a usage plan's quotas protect no data
            auth = {key: value for key, value in auth.items() if key != "UsagePlan"}
        if isinstance(auth, (dict, list)) and mentions(auth) & set(parameters):
            return where
    return None


def _transforms(data: dict) -> list:
    transform = data.get("Transform")
    return transform if isinstance(transform, list) else [transform]


def _translate(data: dict, parameter_values: dict) -> dict:
    # Imported here: the translator (with pydantic and boto3) takes ~0.3 s to import, which
    # only a SAM template should cost (logging too: a scan without SAM never needs it).
    import logging

    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    logging.getLogger("samtranslator").setLevel(logging.CRITICAL)  # its warnings are not ours to print
    template = _prepared(data)
    try:
        # A static region instead of a boto3 session: the translator reads only its name (for the
        # partition of managed-policy ARNs), and a session would read the user's AWS profile.
        translator = Translator(managed_policy_map={}, sam_parser=Parser(), boto_session=_Region())
        translated = translator.translate(sam_template=template, parameter_values=dict(parameter_values),
                                          passthrough_metadata=True)
    except InvalidDocumentException as e:
        raise SamRejected(_one_line("; ".join(str(getattr(c, "message", c)) for c in e.causes))) from None
    except RecursionError:
        raise SamRejected("nested too deeply") from None
    except Exception as e:  # noqa: BLE001 - the translator's own errors on odd input
        raise SamRejected(_one_line(f"{type(e).__name__}: {e}")) from None
    if PLACEHOLDER.split("%")[0] in json.dumps(translated, default=str):
        # a translator that wrote a placeholder in as a value would make it look like a literal
        raise SamRejected("the translator needs a parameter's value that is chosen at deploy time")
    return translated


class _Region:
    region_name = "us-east-1"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _prepared(data: dict) -> dict:
    """A copy of the template that SAM can expand offline: each SAM resource marked (SAM copies
    Metadata to the resources it makes), local code and definition paths as S3 URIs (what
    `sam package` does), Serverless Application Repository apps given a URL, and the few
    properties SAM must read as literals given their parameter's default."""
    template = copy.deepcopy(data)
    resources = template.get("Resources")
    parameters = template.get("Parameters") if isinstance(template.get("Parameters"), dict) else {}
    globals_ = template.get("Globals") if isinstance(template.get("Globals"), dict) else {}
    function_globals = globals_.get("Function") if isinstance(globals_.get("Function"), dict) else {}
    if function_globals:
        _local_to_s3(function_globals, "CodeUri")
        _literal(function_globals, "AutoPublishAlias", parameters, "live")
        _deployment_preference(function_globals, parameters)
    if isinstance(globals_.get("Api"), dict):
        _usage_plan(globals_["Api"], parameters)
    for logical_id, resource in resources.items() if isinstance(resources, dict) else ():
        if not isinstance(resource, dict) or not str(resource.get("Type", "")).startswith("AWS::Serverless::"):
            continue
        metadata = resource.get("Metadata")
        resource["Metadata"] = {**(metadata if isinstance(metadata, dict) else {}), MARK: logical_id}
        props = resource.get("Properties")
        if not isinstance(props, dict):
            continue
        rtype = resource["Type"]
        if rtype == "AWS::Serverless::Function":
            _function_code(props, function_globals)
            _literal(props, "AutoPublishAlias", parameters, "live")
            _literal(props, "AutoPublishCodeSha256", parameters, "dpguard")
            _deployment_preference(props, parameters)
        elif rtype == "AWS::Serverless::LayerVersion":
            _local_to_s3(props, "ContentUri")
            _literal(props, "RetentionPolicy", parameters, "Retain")
        elif rtype in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi", "AWS::Serverless::StateMachine"):
            _local_to_s3(props, "DefinitionUri")
            _deployment_preference(props, parameters)
            _usage_plan(props, parameters)
        elif rtype == "AWS::Serverless::Application" and isinstance(props.get("Location"), dict):
            props["Location"] = SAR_TEMPLATE_URL
    return template


def _function_code(props: dict, function_globals: dict) -> None:
    image = props.get("PackageType", function_globals.get("PackageType")) == "Image"
    key = "ImageUri" if image else "CodeUri"
    if key in props:
        if not image:
            _local_to_s3(props, key)
    elif key not in function_globals and "InlineCode" not in props and "InlineCode" not in function_globals:
        # `sam build` fills these in (the template's folder, an image it builds)
        props[key] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/local-image:latest" if image \
            else f"s3://{LOCAL_FILE_BUCKET}/."


def _local_to_s3(props: dict, key: str) -> None:
    value = props.get(key)
    if isinstance(value, str) and not value.startswith("s3://"):
        props[key] = f"s3://{LOCAL_FILE_BUCKET}/{value.lstrip('/') or '.'}"


def _deployment_preference(props: dict, parameters: dict) -> None:
    preference = props.get("DeploymentPreference")
    if isinstance(preference, dict):  # gradual deployment through CodeDeploy
        _literal(preference, "Type", parameters, "AllAtOnce")
        _literal(preference, "Enabled", parameters, True)
        _literal(preference, "PassthroughCondition", parameters, False)


def _usage_plan(props: dict, parameters: dict) -> None:
    auth = props.get("Auth")
    if isinstance(auth, dict) and isinstance(auth.get("UsagePlan"), dict):  # API keys' quotas
        _literal(auth["UsagePlan"], "CreateUsagePlan", parameters, "PER_API")


def _literal(props: dict, key: str, parameters: dict, fallback: Any) -> None:
    """A `Ref` to a parameter in a property that SAM must read as a literal: its default."""
    value = props.get(key)
    if isinstance(value, dict) and list(value) == ["Ref"] and value["Ref"] in parameters:
        param = parameters[value["Ref"]]
        default = param.get("Default") if isinstance(param, dict) else None
        props[key] = default if isinstance(default, (str, bool, int)) and default != "" else fallback


def _sources(written: dict, translated: dict) -> dict[str, SamSource]:
    """Generated logical id -> the SAM resource it comes from, from the marks SAM copied; the
    marks are then taken out again."""
    resources = written.get("Resources") if isinstance(written.get("Resources"), dict) else {}
    globals_ = written.get("Globals") if isinstance(written.get("Globals"), dict) else {}

    def source(logical_id: str, rtype: str, implicit: bool = False) -> SamSource:
        raw = resources.get(logical_id)
        props = raw.get("Properties") if isinstance(raw, dict) else None
        section = globals_.get(rtype.rsplit("::", 1)[-1])
        return SamSource(logical_id, rtype, props if isinstance(props, dict) else {},
                         section if isinstance(section, dict) else {}, implicit)

    made: dict[str, SamSource] = {}
    for logical_id, resource in translated.get("Resources", {}).items():
        metadata = resource.get("Metadata") if isinstance(resource, dict) else None
        origin = metadata.get(MARK) if isinstance(metadata, dict) else None
        if origin is not None:
            rest = {k: v for k, v in metadata.items() if k != MARK}
            if rest:
                resource["Metadata"] = rest
            else:
                del resource["Metadata"]
            raw = resources.get(origin)
            made[logical_id] = source(origin, raw.get("Type") if isinstance(raw, dict) else "")
            continue
        if logical_id in resources:
            continue  # a resource of the template itself (SAM may have added to it, e.g. a bucket's notifications)
        implicit = next((name for name in IMPLICIT_APIS if logical_id.startswith(name)), None)
        if implicit:
            made[logical_id] = source(implicit, IMPLICIT_APIS[implicit], implicit=True)
    return made


# ---------------------------------------------------------------- findings named as written

def name_sam_resources(app: Any, findings: list, acknowledgments: list) -> None:
    """Findings (and acknowledgment records) on resources SAM made name the SAM resource, the
    SAM property, and say which generated resource was judged."""
    templates = {t.path: t for t in app.templates if getattr(t, "sam", None) is not None}
    if not templates:
        return
    for f in findings:
        tpl = templates.get(f.template)
        origin = tpl.sam.sources.get(f.logical_id) if tpl is not None and f.logical_id else None
        if origin is None:
            continue
        generated = tpl.resources.get(f.logical_id)
        gtype = generated.type if generated is not None else (f.resource_type or "")
        path, note = sam_property(origin, f.logical_id, gtype, f.property_path)
        f.message += _where(origin, f.logical_id, gtype, f.property_path, path, note)
        f.logical_id, f.resource_type, f.property_path = origin.logical_id, origin.resource_type, path
    seen = set()
    kept = []
    for a in acknowledgments:
        tpl = templates.get(a.template)
        origin = tpl.sam.sources.get(a.logical_id) if tpl is not None and a.logical_id else None
        if origin is not None:
            a.logical_id = origin.logical_id
        key = (a.template, a.logical_id, a.rule_id, a.reason)
        if key in seen and origin is not None:
            continue  # SAM copied the acknowledgment to each resource it made: one record
        seen.add(key)
        kept.append(a)
    # A copy that matched nothing beside one that held is not an unused acknowledgment.
    held = {(a.template, a.logical_id, a.rule_id) for a in kept if a.status != "unused"}
    acknowledgments[:] = [a for a in kept if not (a.status == "unused"
                                                   and (a.template, a.logical_id, a.rule_id) in held)]


def sam_property(origin: SamSource, generated_id: str, generated_type: str, path: str) -> tuple[str, str]:
    """The SAM property a generated resource's property comes from, and a note: where it is
    set (Globals) or that SAM cannot set it."""
    parts = path.split("/") if path else []
    event = _event(origin, generated_id)
    if event is not None:
        return f"Properties/Events/{event}", ""
    if len(parts) < 2 or parts[0] != "Properties":
        return path, ""
    key, rest = parts[1], parts[2:]
    if key == "Body" and generated_type in ("AWS::ApiGateway::RestApi", "AWS::ApiGatewayV2::Api"):
        # the OpenAPI definition: as written (DefinitionBody), or made by SAM from Auth and the events
        if "DefinitionBody" in origin.properties:
            return "/".join(["Properties", "DefinitionBody", *rest]), ""
        return "Properties/Auth", _globals_note(origin, "Auth")
    table = SAM_PROPERTIES.get((origin.resource_type, generated_type), {})
    if key in table or "*" in table:
        return f"Properties/{table.get(key, table.get('*'))}", _globals_note(origin, table.get(key, table.get("*")))
    if key in origin.properties or key in origin.globals or key in _sam_vocabulary(origin.resource_type):
        primary = PRIMARY.get(origin.resource_type) == generated_type
        written = key in origin.properties or key in origin.globals
        keep = rest if primary or written else []
        return "/".join(["Properties", key, *keep]), _globals_note(origin, key)
    return "Properties", f"{origin.resource_type} has no property {key}: declare the resource itself to set it"


def _event(origin: SamSource, generated_id: str) -> str | None:
    """The event source (Events.<name>) that a generated resource was made for, found by the
    logical id SAM gives it (<function><event>...)."""
    events = origin.properties.get("Events")
    if not isinstance(events, dict) or generated_id == origin.logical_id:
        return None
    rest = generated_id[len(origin.logical_id):] if generated_id.startswith(origin.logical_id) else ""
    names = [name for name in events if isinstance(name, str) and name and rest.startswith(name)]
    return max(names, key=len) if names else None


def _globals_note(origin: SamSource, key: str) -> str:
    if key not in origin.properties and key in origin.globals:
        return f"set in Globals.{origin.resource_type.rsplit('::', 1)[-1]}"
    return ""


_VOCABULARY: dict[str, frozenset] = {}


def _sam_vocabulary(rtype: str) -> frozenset:
    """The properties SAM accepts on a type (from the translator's resource models)."""
    if rtype not in _VOCABULARY:
        names: frozenset = frozenset()
        try:
            from samtranslator.model import sam_resources
            for model in vars(sam_resources).values():
                if getattr(model, "resource_type", None) == rtype:
                    names = frozenset(getattr(model, "property_types", {}) or {})
                    break
        except ImportError:
            pass
        _VOCABULARY[rtype] = names
    return _VOCABULARY[rtype]


def _where(origin: SamSource, generated_id: str, generated_type: str, generated_path: str,
           sam_path: str, note: str) -> str:
    noun = NOUNS.get(generated_type, generated_type or "resource")
    made = "SAM makes from the functions' events" if origin.implicit else "SAM makes"
    at = f", at {generated_path}" if generated_path and generated_path != sam_path else ""
    extra = f"; {note}" if note else ""
    return f" (in the {noun} {made}, {generated_id}{at}{extra})"
