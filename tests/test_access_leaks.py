"""Paths around the access rules that were open once: each must stay shut."""

from __future__ import annotations

import base64

from tests.client import GraphQLClient
from tests.factories import PASSWORD, add_child, advocate, api_token, send_request, sign_up, user_cursor
from tests.test_support_requests import ACCEPT, SEND_MESSAGE
from tests.test_vault import READ_EVIDENCE, _evidence, _grant, _supported

NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename
    ... on Evidence { title description }
    ... on TimelineEntry { title note }
    ... on Child { displayName dateOfBirth }
    ... on VaultAccessLogEntry { what scope }
  }
}
"""
ADD_TIMELINE = """
mutation($c: ID!) {
  addTimelineEntry(input: {childId: $c, date: "2025-01-01", title: "Annual review", note: "Private"}) {
    timelineEntry { id } userErrors { code }
  }
}
"""
CHILDREN_EVERY_WAY = """
{
  viewer { family { children { displayName dateOfBirth ehcpStage localAuthority } } }
  supportRequests { edges { node { childDisplayName child { displayName dateOfBirth } } } }
}
"""


async def test_a_token_without_vault_read_reads_no_evidence_or_timeline_by_node(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    child = await add_child(gql, family)
    evidence = await _evidence(gql, family, child)
    entry = (await gql.data(ADD_TIMELINE, {"c": child}, family.token))["addTimelineEntry"]["timelineEntry"]
    with_read = await api_token(gql, family, ["VAULT_READ"])
    for scopes in (["NOTIFICATIONS_READ"], ["REQUESTS_READ"], ["VAULT_WRITE"], ["EVENTS_SUBSCRIBE"]):
        token = await api_token(gql, family, scopes)
        for node_id in (evidence, entry["id"], child):
            assert (await gql.data(NODE, {"id": node_id}, token))["node"] is None, (scopes, node_id)
    # The family's session and a token that may read the Vault still read their own records.
    for token in (family.token, with_read):
        assert (await gql.data(NODE, {"id": evidence}, token))["node"]["title"] == "EP report"
        assert (await gql.data(NODE, {"id": entry["id"]}, token))["node"]["note"] == "Private"


async def test_a_token_without_vault_read_reads_no_child_record(gql: GraphQLClient) -> None:
    family = await sign_up(gql)
    child = await add_child(gql, family, displayName="Sam")
    adv = await advocate(gql)
    request_id = (await send_request(gql, family, adv.advocate_id, child))["supportRequest"]["id"]
    requests_only = await api_token(gql, family, ["REQUESTS_READ", "NOTIFICATIONS_READ"])
    seen = await gql.data(CHILDREN_EVERY_WAY, token=requests_only)
    assert seen["viewer"]["family"]["children"] == []
    [edge] = seen["supportRequests"]["edges"]
    # What the request itself says about the child stays readable under REQUESTS_READ …
    assert edge["node"]["childDisplayName"] == "Sam"
    # … the child's own record needs VAULT_READ.
    assert edge["node"]["child"] is None
    both = await api_token(gql, family, ["REQUESTS_READ", "VAULT_READ"])
    seen = await gql.data(CHILDREN_EVERY_WAY, token=both)
    assert [c["displayName"] for c in seen["viewer"]["family"]["children"]] == ["Sam"]
    assert seen["supportRequests"]["edges"][0]["node"]["child"]["displayName"] == "Sam"

    live = await api_token(gql, family, ["REQUESTS_READ", "EVENTS_SUBSCRIBE"])
    subscription = (
        "subscription($a: String) { supportRequestUpdated(after: $a) {"
        " cursor supportRequest { childDisplayName child { displayName } } } }"
    )
    async with gql.socket(live) as sock:
        await sock.ack()
        op = await sock.subscribe(subscription, {"a": await user_cursor(family)})
        await gql.data(ACCEPT, {"input": {"requestId": request_id}}, adv.token)
        event = (await sock.next_event(op))["data"]["supportRequestUpdated"]
        assert event["supportRequest"] == {"childDisplayName": "Sam", "child": None}
    # Replayed, the same event hides the child the same way.
    async with gql.socket(live) as sock:
        await sock.ack()
        first = await _first_cursor(gql, family.token)
        op = await sock.subscribe(subscription, {"a": first})
        replayed = (await sock.next_event(op))["data"]["supportRequestUpdated"]
        assert replayed["supportRequest"]["child"] is None


async def _first_cursor(gql: GraphQLClient, token: str) -> str:
    """A cursor before every event on the viewer's own channel."""
    from resolvers.events import encode_cursor, user_channel

    viewer = (await gql.data("{ viewer { id } }", token=token))["viewer"]["id"]
    user_id = int(base64.b64decode(viewer).decode().split(":")[1])
    return encode_cursor(user_channel(user_id), 0)


LOG_IN = (
    "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) {"
    " token viewer { id } userErrors { code } } }"
)
WHO = "{ viewer { id } }"
ADD_CHILD = (
    'mutation { addChild(input: {displayName: "Via socket", dateOfBirth: "2018-01-01"}) {'
    " child { id } userErrors { code } } }"
)


async def _run(sock: object, query: str, variables: dict[str, object] | None = None) -> dict[str, object]:
    from tests.client import Socket

    assert isinstance(sock, Socket)
    op = await sock.subscribe(query, variables)
    return await sock.next_event(op)


async def test_log_in_over_a_socket_never_changes_who_the_socket_acts_for(gql: GraphQLClient) -> None:
    a = await sign_up(gql)
    b = await sign_up(gql)
    async with gql.socket(a.token) as sock:
        await sock.ack()
        logged_in = (await _run(sock, LOG_IN, {"e": b.email, "p": PASSWORD}))["data"]
        assert isinstance(logged_in, dict)
        b_token = logged_in["logIn"]["token"]
        assert b_token
        # The socket still acts for A: reads and writes are A's.
        assert (await _run(sock, WHO))["data"] == {"viewer": {"id": a.user_id}}
        added = await _run(sock, ADD_CHILD)
        assert added["data"]["addChild"]["userErrors"] == []  # type: ignore[index]
    a_children = await gql.data("{ viewer { family { children { displayName } } } }", token=a.token)
    b_children = await gql.data("{ viewer { family { children { displayName } } } }", token=b.token)
    assert a_children["viewer"]["family"]["children"] == [{"displayName": "Via socket"}]
    assert b_children["viewer"]["family"]["children"] == []
    # The token handed back over the socket is B's and works over HTTP.
    assert (await gql.data(WHO, token=b_token))["viewer"]["id"] == b.user_id


async def test_log_out_over_a_socket_ends_that_sockets_session_and_closes_it(gql: GraphQLClient) -> None:
    a = await sign_up(gql)
    b = await sign_up(gql)
    async with gql.socket(a.token) as sock:
        await sock.ack()
        b_token = (await _run(sock, LOG_IN, {"e": b.email, "p": PASSWORD}))["data"]["logIn"]["token"]  # type: ignore[index]
        await sock.send(
            {
                "id": "out",
                "type": "subscribe",
                "payload": {"query": "mutation { logOut { userErrors { code } } }"},
            }
        )
        assert await sock.closed_code() == 4403
    # A's session (the socket's own) ended; B's, only handed back over the socket, did not.
    assert (await gql.data(WHO, token=a.token))["viewer"] is None
    assert (await gql.data(WHO, token=b_token))["viewer"]["id"] == b.user_id


async def test_an_access_log_entry_resolves_by_node_for_its_family_only(gql: GraphQLClient) -> None:
    family, child, adv, _, relationship = await _supported(gql)
    await _evidence(gql, family, child)
    await _grant(gql, family, relationship, child)
    await gql.data(READ_EVIDENCE, {"f": family.family_id}, adv.token)
    log = await gql.data(
        "{ viewer { family { vaultAccessLog { edges { node { id what } } } } } }", token=family.token
    )
    [entry] = [e["node"] for e in log["viewer"]["family"]["vaultAccessLog"]["edges"]]
    assert (await gql.data(NODE, {"id": entry["id"]}, family.token))["node"] == {
        "__typename": "VaultAccessLogEntry",
        "what": entry["what"],
        "scope": "EVIDENCE",
    }
    assert (await gql.data(NODE, {"id": entry["id"]}, await api_token(gql, family, ["VAULT_READ"])))["node"]
    for token in (
        adv.token,
        (await sign_up(gql)).token,
        await api_token(gql, family, ["REQUESTS_READ"]),
        None,
    ):
        assert (await gql.data(NODE, {"id": entry["id"]}, token))["node"] is None
    missing = base64.b64encode(b"VaultAccessLogEntry:999999").decode()
    assert (await gql.data(NODE, {"id": missing}, family.token))["node"] is None


NOTIFIED = """
{ notifications(first: 5) { edges { node { id kind title body } } } }
"""
NOTIFICATION_NODE = "query($id: ID!) { node(id: $id) { ... on Notification { kind body } } }"
LIVE_NOTIFICATIONS = """
subscription($after: String) { notificationReceived(after: $after) { notification { kind title body } } }
"""


async def test_a_token_for_notifications_alone_reads_no_words_of_a_request_or_message(
    gql: GraphQLClient,
) -> None:
    """A notification of a new request or message quotes it. Reading requests and threads needs
    REQUESTS_READ, so a token with NOTIFICATIONS_READ alone sees the notification with an empty
    body, in the list, by node and live; a token that may read requests, and a session, see it."""
    family = await sign_up(gql)
    child = await add_child(gql, family)
    adv = await advocate(gql)
    words = "Riley was excluded on Monday"
    request_id = (await send_request(gql, family, adv.advocate_id, child, message=words))["supportRequest"][
        "id"
    ]
    alone = await api_token(gql, adv, ["NOTIFICATIONS_READ"])
    live_alone = await api_token(gql, adv, ["NOTIFICATIONS_READ", "EVENTS_SUBSCRIBE"])
    with_requests = await api_token(gql, adv, ["NOTIFICATIONS_READ", "REQUESTS_READ"])
    for token, shown in ((alone, ""), (with_requests, words), (adv.token, words)):
        edges = (await gql.data(NOTIFIED, token=token))["notifications"]["edges"]
        (edge,) = [e for e in edges if e["node"]["kind"] == "NEW_SUPPORT_REQUEST"]
        assert edge["node"]["body"] == shown
        assert edge["node"]["title"]  # that something happened is still shown
        by_node = (await gql.data(NOTIFICATION_NODE, {"id": edge["node"]["id"]}, token))["node"]
        assert by_node == {"kind": "NEW_SUPPORT_REQUEST", "body": shown}
    # Live, for a message: a socket of the token without REQUESTS_READ, and one of the session.
    message = "Riley's school is St Mary's"
    after = await user_cursor(adv)  # each socket gets what follows, however soon it subscribes
    async with gql.socket(live_alone) as limited, gql.socket(adv.token) as session:
        ops = []
        for sock in (limited, session):
            await sock.ack()
            ops.append(await sock.subscribe(LIVE_NOTIFICATIONS, {"after": after}))
        sent = await gql.data(
            SEND_MESSAGE, {"input": {"requestId": request_id, "body": message}}, family.token
        )
        assert sent["sendMessage"]["userErrors"] == []
        got = [
            (await sock.next_event(op))["data"]["notificationReceived"]["notification"]
            for sock, op in zip((limited, session), ops, strict=True)
        ]
    assert [(n["kind"], n["body"]) for n in got] == [("MESSAGE_RECEIVED", ""), ("MESSAGE_RECEIVED", message)]
