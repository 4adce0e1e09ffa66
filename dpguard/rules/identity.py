"""People and their credentials (clause 2): no IAM users, passwords or access keys in templates;
Cognito never lets passwords pass through our servers; no generic accounts created in code."""
from __future__ import annotations

from ..engine.checks import nested_values, require
from ..engine.findings import unverifiable, violation
from ..engine.values import ABSENT, Unknown, as_bool, as_text
from . import rule


@rule("DP-IamNoUsers", clause=2, severity="error", types=["AWS::IAM::User"],
      title="Templates create no IAM users",
      rationale="Clause 2: no generic, shared or default accounts, and regular access reviews. "
                "IAM users carry long-lived credentials and are created once per template, so "
                "they tend to be shared; people sign in through IAM Identity Center and workloads "
                "use roles.",
      remediation="Use an iam.Role assumed by the workload (assumed_by=iam.ServicePrincipal(...)) "
                  "or IAM Identity Center permission sets for people.")
def iam_no_users(r, t):
    made = "the account has" if r.live_facts is not None else "the template creates"
    yield violation("Properties", f"{made} an IAM user; use roles or IAM Identity Center")


@rule("DP-IamNoLoginProfile", clause=2, severity="error", types=["AWS::IAM::User"],
      title="IAM users have no console password",
      rationale="Clause 2: we do not store passwords and create no default credentials. A "
                "LoginProfile puts a console password, often an initial one written in the "
                "template, on an IAM user.",
      remediation="Remove `password` from iam.User; people sign in through IAM Identity Center.")
def iam_no_login_profile(r, t):
    yield from require(r, "LoginProfile", lambda v: v is ABSENT,
                       "the IAM user has a console password (LoginProfile)")


@rule("DP-IamNoAccessKeys", clause=2, severity="error", types=["AWS::IAM::AccessKey"],
      title="Templates create no IAM access keys",
      rationale="Clause 2: no shared or long-lived credentials. An access key made by a template "
                "lives until someone deletes it, and its secret ends up in outputs, parameters or "
                "secrets that others can read. Inactive keys are flagged too: they can be "
                "switched on without a deployment.",
      remediation="Give the workload an iam.Role; for CI use OIDC federation "
                  "(iam.OpenIdConnectProvider + iam.WebIdentityPrincipal).")
def iam_no_access_keys(r, t):
    made = "the account has" if r.live_facts is not None else "the template creates"
    yield violation("Properties", f"{made} an IAM access key (a long-lived credential)")


# Flows in which the client hands the password itself to Cognito (USER_PASSWORD_AUTH), usually
# through our backend (ADMIN_USER_PASSWORD_AUTH, whose legacy name is ADMIN_NO_SRP_AUTH).
PASSWORD_FLOWS = {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH",
                  "ADMIN_NO_SRP_AUTH"}


@rule("DP-CognitoNoPasswordFlows", clause=2, severity="error", types=["AWS::Cognito::UserPoolClient"],
      title="Cognito app clients do not send passwords in plain form",
      rationale="Clause 2: passwords never reach our servers and are handled by AWS. The "
                "USER_PASSWORD_AUTH and ADMIN_USER_PASSWORD_AUTH flows send the password itself "
                "(the admin flow from our backend); SRP, passkeys, one-time codes and refresh "
                "tokens do not. Without ExplicitAuthFlows Cognito enables SRP, custom and "
                "refresh flows only, which is compliant.",
      remediation="cognito.UserPoolClient(self, 'Client', user_pool=pool,\n"
                  "    auth_flows=cognito.AuthFlow(user_srp=True, user=True))")
def cognito_no_password_flows(r, t):
    for path, flow in r.values("ExplicitAuthFlows.*"):
        if isinstance(flow, Unknown):
            yield unverifiable(path, f"the enabled auth flows cannot be known: {flow.reason}")
        elif as_text(flow) in PASSWORD_FLOWS:
            yield violation(path, f"the client enables {flow}, which sends the password itself")


@rule("DP-CognitoNoTemplateUsers", clause=2, severity="warning", types=["AWS::Cognito::UserPoolUser"],
      title="User pools get no users from templates",
      rationale="Clause 2: no generic or default accounts. A user created in a template is the "
                "same in every environment and is easily shared; people sign up or are invited.",
      remediation="Invite people through the user pool (admin_create_user at run time, or "
                  "self sign-up with verification); do not declare cognito.CfnUserPoolUser.")
def cognito_no_template_users(r, t):
    yield violation("Properties", "the template creates a user pool user (a generic or default account)")


def _off(value) -> bool:
    """False, "false", or not set (both identity pool switches are off unless set true)."""
    return value is ABSENT or as_bool(value) is False


@rule("DP-CognitoIdentityPoolNoUnauthenticated", clause=2, severity="error",
      types=["AWS::Cognito::IdentityPool"],
      title="Identity pools give AWS credentials to signed-in users only",
      rationale="Clause 2: only the required user accounts access private information. With "
                "AllowUnauthenticatedIdentities true, the identity pool hands temporary AWS "
                "credentials (of its unauthenticated role) to anyone who asks for them, without "
                "signing in; whatever that role may read is open to the internet. The property is "
                "required and has no default: true (or \"true\") fails, false passes, a value "
                "chosen at deploy time cannot be verified.",
      remediation="cognito_identitypool.IdentityPool(self, 'Identities', allow_unauthenticated_identities=False,\n"
                  "    authentication_providers=cognito_identitypool.IdentityPoolAuthenticationProviders(\n"
                  "        user_pools=[cognito_identitypool.UserPoolAuthenticationProvider(user_pool=pool)]))\n"
                  "L1: cognito.CfnIdentityPool(..., allow_unauthenticated_identities=False)")
def cognito_identity_pool_no_unauthenticated(r, t):
    yield from require(r, "AllowUnauthenticatedIdentities", _off,
                       "the identity pool gives AWS credentials to unauthenticated guests "
                       "(AllowUnauthenticatedIdentities is true): set it to false")


@rule("DP-CognitoIdentityPoolNoClassicFlow", clause=8, severity="warning",
      types=["AWS::Cognito::IdentityPool"],
      title="Identity pools use the enhanced authentication flow only",
      rationale="Clause 8: access on a need-to-know basis. The enhanced flow lets Cognito choose "
                "the role and scopes its credentials down to the services Cognito supports; the "
                "classic (basic) flow lets the client ask STS for any role whose trust policy "
                "names the pool, with the role's full rights, and bypasses role mapping. Classic "
                "flow is off unless AllowClassicFlow is true. A warning: some older SDK clients "
                "still need it.",
      remediation="cognito_identitypool.IdentityPool(self, 'Identities', allow_classic_flow=False)\n"
                  "L1: cognito.CfnIdentityPool(..., allow_classic_flow=False)")
def cognito_identity_pool_no_classic_flow(r, t):
    yield from require(r, "AllowClassicFlow", _off,
                       "the identity pool allows the classic (basic) authentication flow "
                       "(AllowClassicFlow is true): set it to false or leave it out")


@rule("DP-CognitoDomainTls12", clause=3, severity="error", types=["AWS::Cognito::UserPoolDomain"],
      title="Custom domains of Cognito user pools refuse TLS before 1.2",
      rationale="Clause 3: sign-in traffic over current TLS only. A custom domain (CustomDomainConfig) "
                "is served by CloudFront with the SecurityPolicy the template picks; TLS_V1 also "
                "accepts TLS 1.0 and 1.1, and a domain that picks none is not shown to refuse them. "
                "Cognito's own prefix domains (no CustomDomainConfig) are AWS's to secure and pass.",
      remediation="user_pool.add_domain('Domain', custom_domain=cognito.CustomDomainOptions(\n"
                  "    domain_name='auth.example.com', certificate=cert))  # then, on the L1:\n"
                  "domain.node.default_child.add_property_override('CustomDomainConfig.SecurityPolicy', 'TLS_V1_2_2021')")
def cognito_domain_tls12(r, t):
    for path, config in r.values("CustomDomainConfig"):
        if config is ABSENT:
            continue
        for policy in nested_values(config, t, "SecurityPolicy"):
            if isinstance(policy, Unknown):
                yield unverifiable(f"{path}/SecurityPolicy", f"cannot verify the domain's TLS policy: {policy.reason}")
            elif policy not in STRONG_DOMAIN_POLICIES:
                yield violation(f"{path}/SecurityPolicy",
                                f"the custom domain's SecurityPolicy is {policy if policy is not ABSENT else 'not set'}, "
                                "not TLS_V1_2_2021 or newer, so TLS 1.0 and 1.1 are not shown to be refused")


STRONG_DOMAIN_POLICIES = ("TLS_V1_2_2021", "TLS_V1_3_2025")

