"""Cognito user pools (regional) and their app clients, so that DP-CognitoNoPasswordFlows judges
the auth flows each live client enables. Client secrets are never written: only whether a client
has one (GenerateSecret). Users of a pool are data, not configuration, and are not read."""
from __future__ import annotations

from typing import Any

from ..clients import Clients, Unreadable, listing, read
from ..live import LiveTemplate, ref, unreadable
from . import collector

POOL_PAGE = 60  # ListUserPools requires MaxResults; 60 is its largest value


@collector("cognito")
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    idp = clients("cognito-idp", region)
    pools = listing(idp, "list_user_pools", "UserPools", MaxResults=POOL_PAGE)
    if isinstance(pools, Unreadable):
        live.gap(f"Cognito user pools in {region} could not be listed: {pools.reason}")
        return
    for summary in pools:
        pool_id = summary["Id"]
        pool = read(lambda: idp.describe_user_pool(UserPoolId=pool_id)["UserPool"])
        arn = f"arn:aws:cognito-idp:{region}:{live.account}:userpool/{pool_id}"
        logical_id = live.add(summary.get("Name") or pool_id, "AWS::Cognito::UserPool",
                              _pool(summary, pool), arn=pool.get("Arn", arn) if isinstance(pool, dict) else arn)
        clients_of_pool = listing(idp, "list_user_pool_clients", "UserPoolClients", UserPoolId=pool_id)
        if isinstance(clients_of_pool, Unreadable):
            live.gap(f"the app clients of Cognito user pool {pool_id} could not be listed: {clients_of_pool.reason}")
            continue
        for app in clients_of_pool:
            client_id = app["ClientId"]
            described = read(lambda: idp.describe_user_pool_client(
                UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"])
            live.add(f"{app.get('ClientName') or client_id} client", "AWS::Cognito::UserPoolClient",
                     _client(app, described, logical_id), arn=f"{arn}/client/{client_id}")


def _pool(summary: dict, pool: Any) -> dict:
    props: dict = {"UserPoolName": summary.get("Name")}
    if isinstance(pool, Unreadable):
        reason = unreadable(pool.reason)
        props.update(MfaConfiguration=reason, UserPoolAddOns=reason, Policies=reason)
        return props
    props.update(
        MfaConfiguration=pool.get("MfaConfiguration"),
        DeletionProtection=pool.get("DeletionProtection"),
        UserPoolAddOns=pool.get("UserPoolAddOns"),          # AdvancedSecurityMode: threat protection
        Policies=pool.get("Policies"),                       # PasswordPolicy, SignInPolicy (first factors)
        UserPoolTier=pool.get("UserPoolTier"),
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": (pool.get("AdminCreateUserConfig") or {}).get(
            "AllowAdminCreateUserOnly")} if pool.get("AdminCreateUserConfig") else None,
        UserPoolTags=pool.get("UserPoolTags") or None)
    return {k: v for k, v in props.items() if v is not None}


def _client(app: dict, described: Any, pool_logical_id: str) -> dict:
    props: dict = {"UserPoolId": ref(pool_logical_id), "ClientName": app.get("ClientName")}
    if isinstance(described, Unreadable):
        props.update(ExplicitAuthFlows=unreadable(described.reason), GenerateSecret=unreadable(described.reason))
        return props
    props.update(
        ExplicitAuthFlows=described.get("ExplicitAuthFlows") or None,  # none: SRP, custom, refresh only
        GenerateSecret=bool(described.get("ClientSecret")),           # the secret itself is never kept
        AllowedOAuthFlows=described.get("AllowedOAuthFlows") or None,
        AllowedOAuthFlowsUserPoolClient=described.get("AllowedOAuthFlowsUserPoolClient"),
        AllowedOAuthScopes=described.get("AllowedOAuthScopes") or None,
        SupportedIdentityProviders=described.get("SupportedIdentityProviders") or None,
        PreventUserExistenceErrors=described.get("PreventUserExistenceErrors"),
        EnableTokenRevocation=described.get("EnableTokenRevocation"))
    return {k: v for k, v in props.items() if v is not None}
