"""Keeping an account: password reset and change, email verification and change, the signed-in
sessions, two-factor sign-in, and admins' suspensions (SPEC §15)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay

from models import accounts as m
from resolvers import accounts, recovery, two_factor
from resolvers.access import accounts as access
from schema.accounts import User
from schema.arguments import INPUT
from schema.connections import TotalCount, decode_id, nodes
from schema.context import Info
from schema.errors import UserError, attempt
from schema.permissions import IsAdmin, IsSession


@strawberry.type(description="A signed-in browser or app of the viewer's account.")
class Session(relay.Node):
    id: relay.NodeID[int]
    created_at: datetime = strawberry.field(description="When it signed in.")
    last_used_at: datetime | None = strawberry.field(description="When it was last used, to within minutes.")
    expires_at: datetime = strawberry.field(description="When it ends by itself.")
    user_agent: str = strawberry.field(description="What signed in, as its browser or app named itself.")
    _row: strawberry.Private[m.Session]

    @classmethod
    def from_model(cls, row: m.Session) -> Session:
        return cls(
            id=row.id,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            user_agent=row.user_agent,
            _row=row,
        )

    @strawberry.field(description="Whether this is the session making this request.")
    def current(self, info: Info) -> bool:
        viewer = info.context.viewer
        return viewer is not None and viewer.session_id == self.id

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[Session | None]:
        return await nodes(info.context.viewer, node_ids, access.sessions, cls.from_model)


@strawberry.type(description="A page of signed-in sessions, newest first.")
class SessionConnection(relay.Connection[Session], TotalCount):
    pass


@strawberry.input(description="The address of the account whose password was forgotten.")
class RequestPasswordResetInput:
    email: str = strawberry.field(description="The account's email, in any letter case.")


@strawberry.type(
    description="The result of requestPasswordReset: the same whether or not the address has an account."
)
class RequestPasswordResetPayload:
    user_errors: list[UserError] = strawberry.field(
        description="Always empty: nothing here says whether the address has an account."
    )


@strawberry.input(description="A new password, with the token from the reset mail.")
class ResetPasswordInput:
    token: str = strawberry.field(
        description="The token in the mailed link (after `token=`); it works once, within an hour."
    )
    new_password: str = strawberry.field(description="At least 10 characters, not a common password.")


@strawberry.type(
    description="The result of resetPassword: every session of the account has ended; sign in again."
)
class ResetPasswordPayload:
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.input(description="The current password and the new one.")
class ChangePasswordInput:
    current_password: str = strawberry.field(description="The password the account has now.")
    new_password: str = strawberry.field(description="At least 10 characters, not a common password.")


@strawberry.type(description="The result of an account change made by the viewer.")
class ViewerPayload:
    viewer: User | None = strawberry.field(description="The viewer's account as it is now.")
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.input(description="The token from a verification mail.")
class VerifyEmailInput:
    token: str = strawberry.field(
        description="The token in the mailed link (after `token=`); it works once, for two days."
    )


@strawberry.type(description="The result of verifyEmail.")
class VerifyEmailPayload:
    user: User | None = strawberry.field(description="The account whose address is now confirmed.")
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.type(description="The result of resendVerificationEmail.")
class ResendVerificationEmailPayload:
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.input(description="Sign in with another address, once it is confirmed.")
class ChangeEmailInput:
    password: str = strawberry.field(description="The account's password.")
    new_email: str = strawberry.field(description="The new address; a link to confirm it is mailed there.")


@strawberry.input(description="The session to sign out.")
class RevokeSessionInput:
    session_id: relay.GlobalID = strawberry.field(description="One of the viewer's sessions.")


@strawberry.type(description="The result of revokeSession.")
class RevokeSessionPayload:
    session: Session | None = strawberry.field(description="The session, now ended.")
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.type(
    description="The result of enableTwoFactor: add the secret to an authenticator app, then confirm a code."
)
class EnableTwoFactorPayload:
    secret: str | None = strawberry.field(
        description="The TOTP secret, base32: type it into the app if it cannot scan the URI."
    )
    otpauth_uri: str | None = strawberry.field(description="The `otpauth://` URI to show as a QR code.")
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.input(description="A code from the authenticator app.")
class ConfirmTwoFactorInput:
    code: str = strawberry.field(description="The six digits the app shows now.")


@strawberry.type(description="The result of confirmTwoFactor: two-factor sign-in is on.")
class ConfirmTwoFactorPayload:
    recovery_codes: list[str] | None = strawberry.field(
        description="Ten codes that each stand in for the app once. Shown only this once: keep them safe."
    )
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.input(description="Turn two-factor sign-in off.")
class DisableTwoFactorInput:
    password: str = strawberry.field(description="The account's password.")
    code: str = strawberry.field(description="A code from the app, or a recovery code.")


@strawberry.input(description="The account to suspend, and why.")
class SuspendUserInput:
    user_id: relay.GlobalID = strawberry.field(description="A family or advocate account.")
    reason: str = strawberry.field(description="Why, for the record; 1–500 characters, seen by admins only.")


@strawberry.input(description="The account whose suspension ends.")
class UnsuspendUserInput:
    user_id: relay.GlobalID = strawberry.field(description="A suspended account.")


@strawberry.type(description="The result of suspendUser or unsuspendUser.")
class UserPayload:
    user: User | None = strawberry.field(description="The account as it is now.")
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


def _viewer_payload(row: m.User | None, errs: list[UserError]) -> ViewerPayload:
    return ViewerPayload(viewer=User.from_model(row) if row else None, user_errors=errs)


@strawberry.type
class SecurityMutation:
    @strawberry.mutation(
        description=(
            "Mail a single-use link to reset the password of the account with this address, valid "
            "for an hour. The answer is the same whether or not there is such an account."
        )
    )
    async def request_password_reset(
        self, info: Info, input: Annotated[RequestPasswordResetInput, INPUT]
    ) -> RequestPasswordResetPayload:
        await recovery.request_password_reset(info.context.services, input.email)
        return RequestPasswordResetPayload(user_errors=[])

    @strawberry.mutation(
        description="Set a new password with the token from the reset mail; every session ends."
    )
    async def reset_password(
        self, info: Info, input: Annotated[ResetPasswordInput, INPUT]
    ) -> ResetPasswordPayload:
        _, errs = await attempt(
            recovery.reset_password(info.context.services, input.token, input.new_password)
        )
        return ResetPasswordPayload(user_errors=errs)

    @strawberry.mutation(
        description="Change the password, knowing the current one; the account's other sessions end.",
        permission_classes=[IsSession],
    )
    async def change_password(
        self, info: Info, input: Annotated[ChangePasswordInput, INPUT]
    ) -> ViewerPayload:
        row, errs = await attempt(
            recovery.change_password(
                info.context.services, info.context.viewer, input.current_password, input.new_password
            )
        )
        return _viewer_payload(row, errs)

    @strawberry.mutation(description="Confirm an email address with the token from the verification mail.")
    async def verify_email(self, info: Info, input: Annotated[VerifyEmailInput, INPUT]) -> VerifyEmailPayload:
        row, errs = await attempt(recovery.verify_email(info.context.services, input.token))
        return VerifyEmailPayload(user=User.from_model(row) if row else None, user_errors=errs)

    @strawberry.mutation(
        description="Mail the verification link again (at most once a minute).",
        permission_classes=[IsSession],
    )
    async def resend_verification_email(self, info: Info) -> ResendVerificationEmailPayload:
        _, errs = await attempt(recovery.resend_verification(info.context.services, info.context.viewer))
        return ResendVerificationEmailPayload(user_errors=errs)

    @strawberry.mutation(
        description=(
            "Ask to sign in with another address: a link goes to the new address and takes effect "
            "when followed; the current address is told."
        ),
        permission_classes=[IsSession],
    )
    async def change_email(self, info: Info, input: Annotated[ChangeEmailInput, INPUT]) -> ViewerPayload:
        row, errs = await attempt(
            recovery.change_email(info.context.services, info.context.viewer, input.password, input.new_email)
        )
        return _viewer_payload(row, errs)

    @strawberry.mutation(
        description="Sign one of the viewer's sessions out at once, closing its live connections.",
        permission_classes=[IsSession],
    )
    async def revoke_session(
        self, info: Info, input: Annotated[RevokeSessionInput, INPUT]
    ) -> RevokeSessionPayload:
        async def run() -> m.Session:
            return await recovery.revoke_session(
                info.context.services,
                info.context.viewer,
                decode_id(input.session_id, "Session", "sessionId"),
            )

        row, errs = await attempt(run())
        return RevokeSessionPayload(session=Session.from_model(row) if row else None, user_errors=errs)

    @strawberry.mutation(
        description="Start two-factor sign-in: a new secret for an authenticator app, on once confirmed.",
        permission_classes=[IsSession],
    )
    async def enable_two_factor(self, info: Info) -> EnableTwoFactorPayload:
        enrolment, errs = await attempt(two_factor.enable(info.context.services, info.context.viewer))
        if enrolment is None:
            return EnableTwoFactorPayload(secret=None, otpauth_uri=None, user_errors=errs)
        return EnableTwoFactorPayload(secret=enrolment.secret, otpauth_uri=enrolment.uri, user_errors=[])

    @strawberry.mutation(
        description="Turn two-factor sign-in on with a code from the app; returns ten recovery codes, once.",
        permission_classes=[IsSession],
    )
    async def confirm_two_factor(
        self, info: Info, input: Annotated[ConfirmTwoFactorInput, INPUT]
    ) -> ConfirmTwoFactorPayload:
        codes, errs = await attempt(
            two_factor.confirm(info.context.services, info.context.viewer, input.code)
        )
        return ConfirmTwoFactorPayload(recovery_codes=codes, user_errors=errs)

    @strawberry.mutation(
        description="Turn two-factor sign-in off, with the password and a code.",
        permission_classes=[IsSession],
    )
    async def disable_two_factor(
        self, info: Info, input: Annotated[DisableTwoFactorInput, INPUT]
    ) -> ViewerPayload:
        row, errs = await attempt(
            two_factor.disable(info.context.services, info.context.viewer, input.password, input.code)
        )
        return _viewer_payload(row, errs)

    @strawberry.mutation(
        description=(
            "Suspend an account (admins): it cannot sign in, its sessions and API tokens end at once "
            "and an advocate's profile leaves the directory."
        ),
        permission_classes=[IsAdmin],
    )
    async def suspend_user(self, info: Info, input: Annotated[SuspendUserInput, INPUT]) -> UserPayload:
        async def run() -> m.User:
            return await accounts.suspend(
                info.context.services,
                info.context.viewer,
                decode_id(input.user_id, "User", "userId"),
                input.reason,
            )

        row, errs = await attempt(run())
        return UserPayload(user=User.from_model(row) if row else None, user_errors=errs)

    @strawberry.mutation(description="End an account's suspension (admins).", permission_classes=[IsAdmin])
    async def unsuspend_user(self, info: Info, input: Annotated[UnsuspendUserInput, INPUT]) -> UserPayload:
        async def run() -> m.User:
            return await accounts.unsuspend(
                info.context.services, info.context.viewer, decode_id(input.user_id, "User", "userId")
            )

        row, errs = await attempt(run())
        return UserPayload(user=User.from_model(row) if row else None, user_errors=errs)
