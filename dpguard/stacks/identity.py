"""Identity baseline (clause 2): a Cognito user pool where people sign in without passwords.

Passkeys (WebAuthn, user verification required) and one-time codes by e-mail, through
Cognito's choice-based sign-in (USER_AUTH). The app client enables no flow that sends a
password, has no client secret, and hides whether a user exists. Threat protection runs in
full-function mode, which needs the Plus feature plan (see docs/baseline-identity-audit.md).
"""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from ..cdk import acknowledge
from .settings import EnvironmentSettings

# Optional context key: the domain of the web app that registers passkeys. WebAuthn binds a
# passkey to this relying-party id; without it Cognito uses its own (managed login) domain.
PASSKEY_RP_ID_CONTEXT = "passkey_relying_party_id"


class IdentityStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings,
                 **kwargs) -> None:
        kwargs.setdefault("env", cdk.Environment(account=settings.account, region=settings.region))
        super().__init__(scope, construct_id, **kwargs)

        self.user_pool = cognito.UserPool(
            self, "UserPool",
            # Threat protection (adaptive authentication, compromised-credential checks, user
            # event logs) exists only in the Plus plan; Essentials would silently ignore it.
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            sign_in_policy=cognito.SignInPolicy(allowed_first_auth_factors=cognito.AllowedFirstAuthFactors(
                password=True,  # Cognito requires PASSWORD in the list; no app client can use it (see below)
                passkey=True,
                email_otp=True,
            )),
            passkey_relying_party_id=self.node.try_get_context(PASSKEY_RP_ID_CONTEXT),
            passkey_user_verification=cognito.PasskeyUserVerification.REQUIRED,
            # MFA OPTIONAL, not REQUIRED: Cognito offers no passwordless sign-in to users who must
            # do MFA, and OPTIONAL is what adaptive authentication needs to step a risky sign-in
            # up to a second factor. TOTP only: SMS needs an SNS role, e-mail MFA needs SES.
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False, email=False),
            enable_sms_role=False,
            # People are invited (clause 2: no generic accounts); nobody signs themselves up.
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True, username=False),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            keep_original=cognito.KeepOriginalAttrs(email=True),  # an unverified new address cannot take over
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            # Only invitation passwords exist (temporary, short-lived); keep them strong anyway.
            password_policy=cognito.PasswordPolicy(
                min_length=14, require_lowercase=True, require_uppercase=True, require_digits=True,
                require_symbols=True, temp_password_validity=cdk.Duration.days(3)),
            deletion_protection=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # Who may sign in is personal data (e-mail addresses).
        cdk.Tags.of(self.user_pool).add("data-classification", "confidential")
        cdk.Tags.of(self.user_pool).add("data-owner", settings.data_owner)

        self.client = self.user_pool.add_client(
            "WebClient",
            # USER_AUTH (choice-based: passkey or e-mail code) and refresh tokens only. No
            # USER_PASSWORD_AUTH / ADMIN_USER_PASSWORD_AUTH (the password itself travels) and no
            # USER_SRP_AUTH: people have no password to prove.
            auth_flows=cognito.AuthFlow(user=True),
            generate_secret=False,        # a public (browser) client: a secret there would not stay secret
            disable_o_auth=True,          # no hosted UI or callback URLs; the app calls InitiateAuth
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=cdk.Duration.minutes(15),
            id_token_validity=cdk.Duration.minutes(15),
            refresh_token_validity=cdk.Duration.hours(12),  # a working day; then sign in again
            auth_session_validity=cdk.Duration.minutes(3),
        )

        acknowledge(
            self.user_pool, "AwsSolutions::AwsSolutions-COG2",
            "MFA is OPTIONAL, not REQUIRED, on purpose: Cognito does not offer passwordless "
            "sign-in (passkeys, e-mail codes) to users who must complete MFA, so REQUIRED would "
            "force passwords back in, against clause 2. Passkeys are required to do user "
            "verification (biometric or PIN on the device: possession plus inherence), and "
            "Plus-plan threat protection steps risky sign-ins up to TOTP, which needs OPTIONAL.")

        cdk.CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
        cdk.CfnOutput(self, "UserPoolClientId", value=self.client.user_pool_client_id)
