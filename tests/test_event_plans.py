"""Live events answered by their document's plan (`schema/event_plans.py`) carry exactly what
graphql-core's execution of the same events carries.

Every demo account subscribes to each feed on its channels with a selection of everything a plan
can answer (every field that only reads its row, recursively, with `__typename`, an alias and a
fragment), replaying the demo's events from the start of the channel: once as served, once with
the plans turned off. The two must be the same event for event, and the plans must have answered
them (not given up and left them to graphql-core).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from graphql import GraphQLError, GraphQLObjectType, get_named_type, is_leaf_type, parse
from graphql.execution import Executor
from strawberry.relay import to_base64

from models.accounts import User
from models.advocates import Advocate
from models.events import StoredEvent
from models.notifications import NotificationKind
from models.support import SupportRequest
from resolvers import events
from resolvers.demo import ADVOCATES, DEMO_PASSWORD, FAMILY, SECOND_FAMILY, seed
from schema import event_plans
from schema import schema as api_schema
from schema.notifications import Notification, NotificationReceivedEvent
from tests.client import GraphQLClient, Socket
from tests.conftest import Live

LOG_IN = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { token } }"
REVOKE = """
mutation($id: ID!) {
  revokeVaultAccess(input: {grantId: $id}) { vaultGrant { id revokedAt } userErrors { code } }
}
"""


def _selection(object_type: GraphQLObjectType, depth: int = 0) -> str:
    """Every field of `object_type` that a plan answers, recursively."""
    parts = ["__typename"]
    for name, field in object_type.fields.items():
        if field.args or not event_plans._reads_only(field.resolve):
            continue
        named = get_named_type(field.type)
        if isinstance(named, GraphQLObjectType):
            if depth < 3:
                parts.append(f"{name} {{ {_selection(named, depth + 1)} }}")
        elif is_leaf_type(named):
            parts.append(name)
    return " ".join(parts)


def _document(field_name: str, arguments: str = "") -> str:
    subscription = api_schema._schema.subscription_type
    assert subscription is not None
    event_type = get_named_type(subscription.fields[field_name].type)
    assert isinstance(event_type, GraphQLObjectType)
    selection = _selection(event_type)
    return (
        f"subscription($after: String) {{ {field_name}(after: $after{arguments}) {{"
        f" {selection} again: __typename ...Whole }} }}"
        f" fragment Whole on {event_type.name} {{ {selection} }}"
    )


async def _replay(sock: Socket, document: str, channel: str, count: int) -> list[dict[str, Any]]:
    op_id = await sock.subscribe(document, {"after": events.encode_cursor(channel, 0)})
    replayed = [await sock.next_event(op_id) for _ in range(count)]
    await sock.send({"id": op_id, "type": "complete"})
    return replayed


async def _counts() -> Counter[tuple[str, str]]:
    return Counter(await StoredEvent.all().values_list("channel", "kind"))


async def test_live_events_answered_by_plan_are_what_graphql_core_answers(
    gql: GraphQLClient, live_server: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(live_server.app.state.services)
    second = await gql.data(LOG_IN, {"e": SECOND_FAMILY[0], "p": DEMO_PASSWORD})
    grants = await gql.data(
        "{ supportRelationships(first: 5) { edges { node { vaultGrants { id revokedAt } } } } }",
        token=second["logIn"]["token"],
    )
    live = [
        g
        for e in grants["supportRelationships"]["edges"]
        for g in e["node"]["vaultGrants"]
        if not g["revokedAt"]
    ]
    assert live, "the demo's second family shares part of its Vault"
    await gql.data(REVOKE, {"id": live[0]["id"]}, second["logIn"]["token"])

    answered: list[bool] = []
    original = event_plans.plan_for

    def watched(executor: Any) -> Any:
        plan = original(executor)
        if plan is None:
            answered.append(False)
            return None

        def run(event: Any) -> Any:
            try:
                data = plan(event)
            except Exception:
                answered.append(False)
                raise
            answered.append(True)
            return data

        return run

    monkeypatch.setattr(event_plans, "plan_for", watched)
    counts = await _counts()
    feeds = {
        "notificationReceived": ("user", "notification"),
        "newSupportRequest": ("user", "support_request.created"),
        "supportRequestUpdated": ("user", "support_request.updated"),
        "accessRevoked": ("user", "access.revoked"),
        "ticketUpdated": ("advocate", "ticket.updated"),
    }
    compared: dict[str, int] = {}

    async def compare(sock: Socket, field_name: str, document: str, channel: str, count: int) -> None:
        answered.clear()
        planned = await _replay(sock, document, channel, count)
        assert answered, (field_name, "no plan")
        assert all(answered), (field_name, "a plan gave up", answered)
        with monkeypatch.context() as off:
            off.setattr(event_plans, "plan_for", lambda _executor: None)
            reference = await _replay(sock, document, channel, count)
        # Key order too: a response lists fields in the order the document selects them.
        assert json.dumps(planned) == json.dumps(reference), field_name
        assert all("errors" not in event for event in planned), planned
        compared[field_name] = compared.get(field_name, 0) + count

    for email in [FAMILY[0], SECOND_FAMILY[0], *(advocate[0] for advocate in ADVOCATES)]:
        token = (await gql.data(LOG_IN, {"e": email, "p": DEMO_PASSWORD}))["logIn"]["token"]
        user = await User.get(email=email)
        advocate = await Advocate.get_or_none(user_id=user.id)
        channels = {"user": events.user_channel(user.id)}
        if advocate is not None:
            channels["advocate"] = events.advocate_channel(advocate.id)
        async with gql.socket(token) as sock:
            await sock.ack()
            for field_name, (where, kind) in feeds.items():
                channel = channels.get(where)
                count = counts.get((channel, kind), 0) if channel is not None else 0
                if channel is None or not count:
                    continue
                await compare(sock, field_name, _document(field_name), channel, count)
            for request in await SupportRequest.filter(family__user_id=user.id).limit(2):
                thread = events.thread_channel(request.thread_id)
                count = counts.get((thread, "message.added"), 0)
                if not count:
                    continue
                request_id = f'"{to_base64("SupportRequest", request.id)}"'
                document = _document("messageAdded", f", requestId: {request_id}")
                await compare(sock, "messageAdded", document, thread, count)
    assert set(compared) == {*feeds, "messageAdded"}, compared


def _plan(document: str) -> Any:
    return event_plans.plan_for(Executor.build(api_schema._schema, parse(document)))


NOTIFICATION = "subscription { notificationReceived { cursor notification { id kind title } } }"


def test_a_document_has_a_plan_only_where_every_field_only_reads_its_row() -> None:
    assert _plan(NOTIFICATION) is not None
    # A field with a resolver of its own (the request's family, read through the access module).
    assert _plan("subscription { newSupportRequest { cursor supportRequest { family { id } } } }") is None
    # A directive: what it includes can depend on the variables.
    assert _plan("subscription { notificationReceived { cursor @include(if: true) } }") is None
    # A query is executed by graphql-core as always.
    assert _plan("{ viewer { id } }") is None


def _event(**changes: Any) -> NotificationReceivedEvent:
    fields: dict[str, Any] = {
        "id": 4,
        "kind": NotificationKind.NEW_SIGN_IN,
        "title": "A new sign-in",
        "body": "",
        "subject_id": None,
        "created_at": datetime(2026, 12, 7, tzinfo=UTC),
        "read_at": None,
    }
    notification = changes.pop("notification", None) or Notification(**{**fields, **changes})
    return NotificationReceivedEvent(
        cursor="c1", occurred_at=datetime(2026, 12, 7, tzinfo=UTC), notification=notification
    )


def test_a_plan_answers_a_well_formed_event() -> None:
    plan = _plan(NOTIFICATION)
    assert plan is not None
    assert plan(_event()) == {
        "notificationReceived": {
            "cursor": "c1",
            "notification": {
                "id": to_base64("Notification", 4),
                "kind": "NEW_SIGN_IN",
                "title": "A new sign-in",
            },
        }
    }


@pytest.mark.parametrize(
    ("changes", "raised"),
    [
        ({"kind": None}, event_plans.GiveUp),  # null in a non-null field
        ({"title": ValueError("unreadable")}, event_plans.GiveUp),  # a returned exception is an error
        ({"notification": object()}, event_plans.GiveUp),  # not a Notification
        ({"kind": "NOT_A_KIND"}, GraphQLError),  # the enum's own coercion refuses it
    ],
    ids=["null", "exception", "wrong-type", "bad-enum"],
)
def test_a_plan_gives_up_where_graphql_core_would_report_an_error(
    changes: dict[str, Any], raised: type[Exception]
) -> None:
    plan = _plan(NOTIFICATION)
    assert plan is not None
    with pytest.raises(raised):
        plan(_event(**changes))


async def test_an_event_a_plan_gives_up_on_is_executed_by_graphql_core(
    gql: GraphQLClient, live_server: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(live_server.app.state.services)
    token = (await gql.data(LOG_IN, {"e": FAMILY[0], "p": DEMO_PASSWORD}))["logIn"]["token"]
    user = await User.get(email=FAMILY[0])
    channel = events.user_channel(user.id)
    count = (await _counts()).get((channel, "notification"), 0)
    assert count
    document = _document("notificationReceived")
    async with gql.socket(token) as sock:
        await sock.ack()
        served = await _replay(sock, document, channel, count)

        def giving_up(_executor: Any) -> Any:
            def plan(_event: Any) -> Any:
                raise event_plans.GiveUp

            return plan

        monkeypatch.setattr(event_plans, "plan_for", giving_up)
        assert await _replay(sock, document, channel, count) == served
