"""Accounts: the viewer, signing up, in and out, and integrators' API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from starlette.websockets import WebSocket
from strawberry import relay

from models import accounts as m
from resolvers import accounts
from resolvers.access import accounts as access
from resolvers.pagination import window
from schema.arguments import INPUT, After, Before, First, Last
from schema.connections import TotalCount, decode_id, nodes, to_connection

if TYPE_CHECKING:
    from schema.advocates import Advocate
    from schema.rights import DataExportConnection
    from schema.security import SessionConnection
from schema.context import Info
from schema.enums import ApiScope, Role
from schema.errors import UserError, attempt
from schema.families import Family
from schema.permissions import IsSession


@strawberry.type(description="A person with an account: a family member, an advocate or an admin.")
class User(relay.Node):
    id: relay.NodeID[int]
    display_name: str = strawberry.field(description="The name shown to others.")
    role: Role = strawberry.field(description="What kind of account this is.")
    created_at: datetime = strawberry.field(description="When the account was made.")
    _row: strawberry.Private[m.User]

    @classmethod
    def from_model(cls, user: m.User) -> User:
        return cls(
            id=user.id,
            display_name=user.display_name,
            role=user.role,
            created_at=user.created_at,
            _row=user,
        )

    @strawberry.field(description="The sign-in email; shown only to the user themselves.")
    def email(self, info: Info) -> str | None:
        return self._row.email if access.is_self(info.context.viewer, self.id) else None

    @strawberry.field(
        description=(
            "Whether the sign-in email is confirmed; only to the user themselves. Until it is, a "
            "family cannot send support requests or share its Vault, and an advocate cannot ask "
            "for verification."
        )
    )
    def email_verified(self, info: Info) -> bool | None:
        if not access.is_self(info.context.viewer, self.id):
            return None
        return self._row.email_verified_at is not None

    @strawberry.field(description="Whether sign-in asks for a TOTP code; only to the user, signed in.")
    def two_factor_enabled(self, info: Info) -> bool | None:
        if not access.manages_account(info.context.viewer, self.id):
            return None
        return self._row.totp_enabled_at is not None

    @strawberry.field(
        description=(
            "When the account will be erased, after deleteAccount (cancelAccountDeletion until then); "
            "only to the user, signed in."
        )
    )
    def erasure_due_at(self, info: Info) -> datetime | None:
        return self._row.erasure_due_at if access.manages_account(info.context.viewer, self.id) else None

    @strawberry.field(
        description="The copies of the account's data asked for, newest first: only to the user, signed in."
    )
    async def data_exports(
        self, info: Info, first: First = 20, after: After = None, last: Last = None, before: Before = None
    ) -> Annotated[DataExportConnection, strawberry.lazy("schema.rights")]:
        from resolvers import exports
        from schema.rights import DataExport as ExportType
        from schema.rights import DataExportConnection as Conn

        page = await exports.page_for(info.context.viewer, self.id, window(first, after, last, before))
        return to_connection(Conn, page, ExportType.from_model)  # type: ignore[return-value]

    @strawberry.field(description="When an admin suspended the account, if one did; only to admins.")
    def suspended_at(self, info: Info) -> datetime | None:
        return self._row.suspended_at if access.is_admin(info.context.viewer) else None

    @strawberry.field(description="Why the account is suspended; only to admins.")
    def suspension_reason(self, info: Info) -> str | None:
        if not access.is_admin(info.context.viewer) or self._row.suspended_at is None:
            return None
        return self._row.suspension_reason

    @strawberry.field(
        description=(
            "The account's signed-in sessions, newest first: only to the user, signed in (an API "
            "token sees none)."
        )
    )
    async def sessions(
        self, info: Info, first: First = 20, after: After = None, last: Last = None, before: Before = None
    ) -> Annotated[SessionConnection, strawberry.lazy("schema.security")]:
        from resolvers import recovery
        from schema.security import Session as SessionType
        from schema.security import SessionConnection as Conn

        asked = window(first, after, last, before)
        page = await recovery.sessions(info.context.services, info.context.viewer, self.id, asked)
        return to_connection(Conn, page, SessionType.from_model)  # type: ignore[return-value]

    @strawberry.field(description="The family's Vault owner record, for a family account viewing itself.")
    async def family(self, info: Info) -> Family | None:
        family_id = access.own_family_id(info.context.viewer, self.id)
        if family_id is None:
            return None
        family = await info.context.loaders.family.load(family_id)
        return Family.from_model(family) if family else None

    @strawberry.field(description="The advocate profile, for an advocate account viewing itself.")
    async def advocate(self, info: Info) -> Annotated[Advocate, strawberry.lazy("schema.advocates")] | None:
        from schema.advocates import Advocate as AdvocateType

        advocate_id = access.own_advocate_id(info.context.viewer, self.id)
        if advocate_id is None:
            return None
        row = await info.context.loaders.advocate.load(advocate_id)
        return AdvocateType.from_model(row) if row else None

    @strawberry.field(
        description=(
            "The user's API tokens, revoked ones too, newest first: only to the user, signed in "
            "(an API token sees none)."
        )
    )
    async def api_tokens(
        self, info: Info, first: First = 20, after: After = None, last: Last = None, before: Before = None
    ) -> ApiTokenConnection:
        page = await accounts.api_token_page(info.context.viewer, self.id, window(first, after, last, before))
        return to_connection(ApiTokenConnection, page, ApiToken.from_model)  # type: ignore[return-value]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[User | None]:
        return await nodes(info.context.viewer, node_ids, access.users, cls.from_model)


@strawberry.type(description="An integrator's token. Its secret is shown once, when it is made.")
class ApiToken(relay.Node):
    id: relay.NodeID[int]
    name: str = strawberry.field(description="What the token is for.")
    scopes: list[ApiScope] = strawberry.field(description="What the token may do.")
    created_at: datetime = strawberry.field(description="When it was made.")
    expires_at: datetime | None = strawberry.field(description="When it stops working, if ever.")
    revoked_at: datetime | None = strawberry.field(description="When it was revoked, if it was.")

    @classmethod
    def from_model(cls, token: m.ApiToken) -> ApiToken:
        return cls(
            id=token.id,
            name=token.name,
            scopes=[ApiScope(s) for s in token.scopes],
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[ApiToken | None]:
        return await nodes(info.context.viewer, node_ids, access.api_tokens, cls.from_model)


@strawberry.type(description="A page of API tokens, newest first.")
class ApiTokenConnection(relay.Connection[ApiToken], TotalCount):
    pass


@strawberry.input(description="A new family or advocate account.")
class SignUpInput:
    email: str = strawberry.field(description="Unique, whatever its letter case.")
    password: str = strawberry.field(description="At least 10 characters.")
    display_name: str = strawberry.field(description="1–100 characters.")
    role: Role = strawberry.field(description="FAMILY or ADVOCATE; admins are made by operators.")


@strawberry.input(description="The email and password of an account.")
class LogInInput:
    email: str = strawberry.field(description="The account's email, in any letter case.")
    password: str = strawberry.field(description="The account's password.")
    otp: str | None = strawberry.field(
        default=None,
        description=(
            "With two-factor sign-in on: the six digits the authenticator app shows, or one of the "
            "recovery codes. Without it such an account answers TWO_FACTOR_REQUIRED."
        ),
    )


@strawberry.type(description="The result of signing up or in.")
class AuthPayload:
    token: str | None = strawberry.field(
        description="Send as `Authorization: Bearer <token>`; it expires after 30 days."
    )
    viewer: User | None = strawberry.field(description="The signed-in user.")
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.type(description="The result of logOut.")
class LogOutPayload:
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.input(description="A new API token for an integration.")
class CreateApiTokenInput:
    name: str = strawberry.field(description="What the token is for; 1–100 characters.")
    scopes: list[ApiScope] = strawberry.field(description="What it may do; at least one.")
    expires_at: datetime | None = strawberry.field(
        default=None, description="When it stops working; within a year. Never, if left out."
    )


@strawberry.type(description="The result of createApiToken.")
class CreateApiTokenPayload:
    api_token: ApiToken | None = strawberry.field(description="The token's record.")
    secret: str | None = strawberry.field(description="The bearer secret. Shown only this once.")
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.input(description="The API token to revoke.")
class RevokeApiTokenInput:
    api_token_id: relay.GlobalID = strawberry.field(description="One of the viewer's tokens.")


@strawberry.type(description="The result of revokeApiToken.")
class RevokeApiTokenPayload:
    api_token: ApiToken | None = strawberry.field(description="The token, now revoked.")
    user_errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


def _user_agent(info: Info) -> str:
    return info.context.request.headers.get("user-agent", "")


async def _auth_payload(
    info: Info, signed_in: accounts.SignedIn | None, errs: list[UserError]
) -> AuthPayload:
    if signed_in is None:
        return AuthPayload(token=None, viewer=None, user_errors=errs)
    # Over HTTP the rest of this response is read as the person who just signed in. A socket acts
    # for whoever `connection_init` named, for as long as it is open (SPEC §12): it hands the token
    # back and changes nothing else.
    if not isinstance(info.context.request, WebSocket):
        info.context.viewer = await accounts.authenticate(info.context.services, signed_in.token)
    return AuthPayload(token=signed_in.token, viewer=User.from_model(signed_in.user), user_errors=[])


@strawberry.type
class AccountQuery:
    @strawberry.field(description="The signed-in user; null when anonymous.")
    async def viewer(self, info: Info) -> User | None:
        viewer = info.context.viewer
        if viewer is None:
            return None
        user = await info.context.loaders.user.load(viewer.user_id)
        return User.from_model(user) if user else None

    @strawberry.field(
        description="The viewer's API tokens, newest first.",
        permission_classes=[IsSession],
        deprecation_reason="Use `viewer { apiTokens }`, a connection: revoked tokens stay listed.",
    )
    async def api_tokens(self, info: Info) -> list[ApiToken]:
        return [ApiToken.from_model(t) for t in await accounts.api_tokens(info.context.viewer)]


@strawberry.type
class AccountMutation:
    @strawberry.mutation(description="Make a family or advocate account and sign in to it.")
    async def sign_up(self, info: Info, input: Annotated[SignUpInput, INPUT]) -> AuthPayload:
        signed_in, errs = await attempt(
            accounts.sign_up(
                info.context.services,
                input.email,
                input.password,
                input.display_name,
                input.role,
                _user_agent(info),
            )
        )
        return await _auth_payload(info, signed_in, errs)

    @strawberry.mutation(description="Sign in with an email and password.")
    async def log_in(self, info: Info, input: Annotated[LogInInput, INPUT]) -> AuthPayload:
        signed_in, errs = await attempt(
            accounts.log_in(info.context.services, input.email, input.password, input.otp, _user_agent(info))
        )
        return await _auth_payload(info, signed_in, errs)

    @strawberry.mutation(description="End the current session at once.", permission_classes=[IsSession])
    async def log_out(self, info: Info) -> LogOutPayload:
        _, errs = await attempt(accounts.log_out(info.context.services, info.context.viewer))
        return LogOutPayload(user_errors=errs)

    @strawberry.mutation(
        description="Make a scoped API token for an integration.", permission_classes=[IsSession]
    )
    async def create_api_token(
        self, info: Info, input: Annotated[CreateApiTokenInput, INPUT]
    ) -> CreateApiTokenPayload:
        created, errs = await attempt(
            accounts.create_api_token(
                info.context.services,
                info.context.viewer,
                input.name,
                list(input.scopes),
                input.expires_at,
            )
        )
        if created is None:
            return CreateApiTokenPayload(api_token=None, secret=None, user_errors=errs)
        return CreateApiTokenPayload(
            api_token=ApiToken.from_model(created.api_token), secret=created.secret, user_errors=[]
        )

    @strawberry.mutation(
        description="Revoke one of the viewer's API tokens at once, closing its connections.",
        permission_classes=[IsSession],
    )
    async def revoke_api_token(
        self, info: Info, input: Annotated[RevokeApiTokenInput, INPUT]
    ) -> RevokeApiTokenPayload:
        async def run() -> m.ApiToken:
            return await accounts.revoke_api_token(
                info.context.services,
                info.context.viewer,
                decode_id(input.api_token_id, "ApiToken", "apiTokenId"),
            )

        token, errs = await attempt(run())
        return RevokeApiTokenPayload(
            api_token=ApiToken.from_model(token) if token else None, user_errors=errs
        )
