"""The read path's SQL is constant per page: the richest pages a family's and an advocate's SPA ask
for send the same number of statements for 10 items as for 100 (every relation through a
per-request loader, access decided on the loaded rows)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest
from strawberry.relay import GlobalID
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from models.families import Child, EhcpStage
from resolvers import db
from tests.client import GraphQLClient, eventually
from tests.factories import Account, AdvocateAccount, admin, advocate, db_id, send_request, sign_up
from tests.statements import statements
from tests.test_support_requests import ACCEPT
from tests.test_tickets import ADD_ITEM
from tests.test_vault import END, REVIEW, _supported

TICKETS = 100

# The advocate's dashboard as the SPA asks for it (issue 13's page): at most 5 statements.
DASHBOARD_PAGE = """
query($n: Int) {
  ticketQueue(first: $n) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id status slaState nextSlaDueAt familyDisplayName
      checklist { id text done }
      request {
        id childDisplayName childAgeYears ehcpStage
        child { id displayName }
        messages(first: 5) { edges { node { id body createdAt fromViewer } } }
      }
    } }
  }
}
"""
MAX_DASHBOARD_STATEMENTS = 5

# The advocate's dashboard with every relation a ticket row can show.
DASHBOARD = """
query($n: Int) {
  ticketQueue(first: $n) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id status slaState nextSlaDueAt familyDisplayName childDisplayName lastFamilyMessageAt
      slaClocks { kind state dueAt }
      checklist { id text done position }
      notes(first: 5) { totalCount edges { node { id body author { displayName } } } }
      request {
        id status childDisplayName childAgeYears ehcpStage supportTypes
        child { id displayName }
        family { id displayName }
        messages(first: 5) {
          totalCount edges { node { id body createdAt fromViewer author { displayName } } }
        }
      }
      relationship {
        id status openedAt
        child { id }
        advocate { id displayName }
        messages(first: 5) { edges { node { id body } } }
      }
    } }
  }
}
"""

# The same without the checklist, which can hold 100 items a ticket: what fits the cost limit at
# 100 tickets a page.
DASHBOARD_WIDE = DASHBOARD.replace("      checklist { id text done position }\n", "")

# The family's home page: children, requests with their advocates and messages, notifications.
FAMILY_HOME = """
query($n: Int) {
  viewer { id displayName family { id children { id displayName ageYears ehcpStage } } }
  supportRequests(first: $n) {
    edges { node {
      id status createdAt childDisplayName
      child { id displayName }
      advocate { id displayName rating { average count } }
      relationship { id status advocate { displayName } }
      messages(first: 5) { edges { node { id body createdAt fromViewer author { displayName } } } }
    } }
  }
  supportRelationships(first: $n) {
    edges { node { id status request { id } child { displayName } } }
  }
  notifications(first: $n) { edges { node { id kind title body subjectId createdAt readAt } } }
}
"""


async def _world(gql: GraphQLClient) -> tuple[Account, AdvocateAccount]:
    return await _world_of(gql, TICKETS)


async def _world_of(gql: GraphQLClient, tickets: int) -> tuple[Account, AdvocateAccount]:
    """One family with `tickets` children, each with a request to one advocate that the advocate
    accepted with a message and gave a checklist item: every ticket the same shape, so a page of 10
    and a page of 100 hold the same kinds of rows."""
    family = await sign_up(gql)
    adv = await advocate(gql, capacity=200)
    now = gql.app.state.services.clock.now()
    for i in range(tickets):
        child = await Child.create(
            family_id=db_id(family.family_id or ""),
            display_name=f"Child {i}",
            date_of_birth=date(2015, 1, 1),
            ehcp_stage=EhcpStage.ASSESSING,
            local_authority="Leeds",
            created_at=now,
            updated_at=now,
        )
        sent = await send_request(gql, family, adv.advocate_id, str(GlobalID("Child", str(child.id))))
        request_id = sent["supportRequest"]["id"]
        accepted = await gql.data(ACCEPT, {"input": {"requestId": request_id, "message": "Yes."}}, adv.token)
        assert accepted["acceptSupportRequest"]["userErrors"] == [], accepted
        ticket = await gql.data(
            "query($r: ID!) { node(id: $r) { ... on SupportRequest { ticket { id } } } }",
            {"r": request_id},
            adv.token,
        )
        added = await gql.data(
            ADD_ITEM,
            {"input": {"ticketId": ticket["node"]["ticket"]["id"], "text": "Call the LA"}},
            adv.token,
        )
        assert added["addChecklistItem"]["userErrors"] == [], added
    return family, adv


async def _count(gql: GraphQLClient, query: str, page: int, token: str) -> tuple[int, dict[str, Any]]:
    with statements() as sent:
        data = await gql.data(query, {"n": page}, token)
    return len(sent), data


def _check_dashboard(data: dict[str, Any], page: int, checklist: bool) -> None:
    edges = data["ticketQueue"]["edges"]
    assert len(edges) == page
    # Every relation really was resolved, on the last row as on the first.
    for row in (edges[0]["node"], edges[-1]["node"]):
        assert row["familyDisplayName"]
        assert row["request"]["child"] is None  # the child's record is the family's alone
        assert row["request"]["family"]["id"]
        assert [m["node"]["body"] for m in row["request"]["messages"]["edges"]][-1] == "Yes."
        assert row["request"]["messages"]["edges"][-1]["node"]["fromViewer"] is True
        assert row["relationship"]["status"] == "ACTIVE"
        assert row["relationship"]["advocate"]["displayName"]
        assert len(row["relationship"]["messages"]["edges"]) == 2
        assert [c["kind"] for c in row["slaClocks"]] == ["FIRST_RESPONSE", "FIRST_MESSAGE"]
        if checklist:
            assert [i["text"] for i in row["checklist"]] == ["Call the LA"]


def _check_family_home(data: dict[str, Any], page: int) -> None:
    requests = data["supportRequests"]["edges"]
    assert len(requests) == page
    for row in (requests[0]["node"], requests[-1]["node"]):
        assert row["child"]["displayName"].startswith("Child ")
        assert row["advocate"]["displayName"]
        assert row["relationship"]["status"] == "ACTIVE"
        assert len(row["messages"]["edges"]) == 2
    assert len(data["viewer"]["family"]["children"]) == TICKETS
    assert len(data["supportRelationships"]["edges"]) == page
    assert len(data["notifications"]["edges"]) == page


async def test_the_richest_pages_send_as_many_statements_for_100_items_as_for_10(
    gql: GraphQLClient,
) -> None:
    family, adv = await _world(gql)
    counts: dict[str, dict[int, int]] = {
        "dashboard page": {},
        "dashboard": {},
        "dashboard, wide": {},
        "family home": {},
    }
    # 100 tickets with their checklists (100 items each) are over the cost limit: 10 and 50.
    for page in (10, 50):
        n, data = await _count(gql, DASHBOARD_PAGE, page, adv.token)
        edges = data["ticketQueue"]["edges"]
        assert len(edges) == page
        assert edges[-1]["node"]["request"]["messages"]["edges"][-1]["node"]["body"] == "Yes."
        assert edges[-1]["node"]["familyDisplayName"]
        counts["dashboard page"][page] = n
    for page in (10, 50):
        n, data = await _count(gql, DASHBOARD, page, adv.token)
        _check_dashboard(data, page, checklist=True)
        counts["dashboard"][page] = n
    for page in (10, TICKETS):
        n, data = await _count(gql, DASHBOARD_WIDE, page, adv.token)
        _check_dashboard(data, page, checklist=False)
        counts["dashboard, wide"][page] = n
        n, data = await _count(gql, FAMILY_HOME, page, family.token)
        _check_family_home(data, page)
        counts["family home"][page] = n
    for name, by_page in counts.items():
        assert len(set(by_page.values())) == 1, (name, counts)
    assert counts["dashboard page"][50] <= MAX_DASHBOARD_STATEMENTS, counts


def _heard(gql: GraphQLClient) -> bool:
    """Whether the served app hears every credential that ends, and so authenticates from memory."""
    assert gql.app is not None
    listening: bool = gql.app.state.services.connections.listening
    return listening


async def _hearing(gql: GraphQLClient) -> None:
    """Until the app hears the control channel (it subscribes as it starts)."""

    async def heard() -> bool:
        return _heard(gql)

    await eventually(heard, "the app hears the control channel")


async def test_a_signed_in_request_authenticates_without_a_statement(gql: GraphQLClient) -> None:
    """While the process hears every credential that ends, a session or API token it has seen
    is answered from memory: a signed-in `{ __typename }` sends no statement. Once the credential
    ends it is refused at once, and so is one that never existed."""
    family = await sign_up(gql)
    create = 'mutation($s: [ApiScope!]!) { createApiToken(input: {name: "CRM", scopes: $s}) { secret } }'
    secret = (await gql.data(create, {"s": ["NOTIFICATIONS_READ"]}, family.token))["createApiToken"]["secret"]
    await _hearing(gql)
    for token in (family.token, secret):
        await gql.data("{ viewer { id } }", token=token)
        with statements() as sent:
            assert await gql.data("{ __typename }", token=token) == {"__typename": "Query"}
        assert sent == []
    tokens = (await gql.data("{ apiTokens { id } }", token=family.token))["apiTokens"]
    revoke = "mutation($id: ID!) { revokeApiToken(input: {apiTokenId: $id}) { userErrors { code } } }"
    await gql.data(revoke, {"id": tokens[0]["id"]}, family.token)
    await gql.data("mutation { logOut { userErrors { code } } }", token=family.token)
    for token in (family.token, secret, family.token + "x"):
        assert (await gql("{ viewer { id } }", token=token))["data"] == {"viewer": None}


async def test_a_request_takes_one_pooled_connection_for_all_its_statements(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL every statement of a request, its transactions included, runs on one
    connection from the pool, taken at the first statement (resolvers/db.py)."""
    client = get_connection("default")
    if client.capabilities.dialect != "postgres":
        pytest.skip("SQLite has one connection: there is no pool to take from")
    _, adv = await _world_of(gql, tickets=12)
    await _hearing(gql)
    pool_class = type(client._pool)
    taken: list[bool] = []
    acquire = pool_class.acquire

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        if db.in_request():
            taken.append(True)
        return acquire(self, *args, **kwargs)

    monkeypatch.setattr(pool_class, "acquire", counted)
    with statements() as sent:
        data = await gql.data(DASHBOARD_PAGE, {"n": 10}, adv.token)
    assert len(data["ticketQueue"]["edges"]) == 10
    # Three: the credential is answered from memory (the test above).
    assert (len(sent), len(taken)) == (3, 1)
    # A mutation's transaction runs on the request's connection too.
    taken.clear()
    ticket_id = data["ticketQueue"]["edges"][0]["node"]["id"]
    added = await gql.data(ADD_ITEM, {"input": {"ticketId": ticket_id, "text": "Chase the LA"}}, adv.token)
    assert added["addChecklistItem"]["userErrors"] == []
    assert len(taken) == 1
    # A request that sends no statement takes none.
    taken.clear()
    await gql.data("{ __typename }")
    assert taken == []


async def test_a_connection_goes_back_to_the_pool_without_its_transaction(gql: GraphQLClient) -> None:
    """The pool sends no reset query when it takes a connection back (resolvers/db.py), but a
    transaction left open is still rolled back: the next user of the connection starts clean."""
    client = get_connection("default")
    if client.capabilities.dialect != "postgres":
        pytest.skip("SQLite has one connection: there is no pool to take from")
    family = await sign_up(gql)
    proxy = await client._pool.acquire()
    raw = proxy._con
    await proxy.execute("BEGIN")
    await proxy.execute("UPDATE users SET email = 'changed@example.test'")
    assert raw.is_in_transaction()
    await client._pool.release(proxy)
    assert not raw.is_in_transaction()
    assert (await gql.data("{ viewer { email } }", token=family.token))["viewer"] == {"email": family.email}


async def test_statements_that_waited_behind_their_requests_release_take_no_connection_into_it(
    gql: GraphQLClient,
) -> None:
    """A subscription gives its request's connection back once it has replayed (`release_scope`).
    A statement or a transaction of that request which was waiting for the connection meanwhile runs
    on one of the pool's and gives it back: the scope holds no connection afterwards (a live
    subscription would otherwise keep one of the pool's few for as long as it lasts)."""
    client = get_connection("default")
    if client.capabilities.dialect != "postgres":
        pytest.skip("SQLite has one connection: there is no pool to take from")
    await gql.data("{ __typename }")

    async def in_a_transaction() -> None:
        async with in_transaction("default") as connection:
            await connection.execute_query("SELECT 1")

    async with db.request_scope():
        scope = db._scope.get()
        assert scope is not None

        async def holds() -> bool:
            return scope.connection is not None

        holding = asyncio.create_task(client.execute_query("SELECT pg_sleep(0.2)"))
        await eventually(holds, "the first statement holds the request's connection")
        releasing = asyncio.create_task(db.release_scope())
        await asyncio.sleep(0)  # `release` is waiting for the first statement now
        assert not releasing.done()
        waiting = [
            asyncio.create_task(client.execute_query("SELECT 1")),
            asyncio.create_task(in_a_transaction()),
        ]
        await asyncio.gather(holding, releasing, *waiting)
        assert scope.closed
        assert scope.connection is None


async def test_a_directory_page_reads_every_advocates_reviews_together(gql: GraphQLClient) -> None:
    """Each advocate's latest reviews on a directory page: one statement for the page of reviews
    and one for their counts, however many advocates; hidden reviews are left out of both."""
    boss = await admin(gql)
    reviewed: dict[str, list[int]] = {}
    for ratings in ([5, 4, 3], [2], [5, 1]):
        adv = await advocate(gql)
        reviewed[adv.advocate_id] = []
        for n, rating in enumerate(ratings):
            family, _, _, _, relationship = await _supported(gql, adv)
            end = {"input": {"relationshipId": relationship, "reason": "RESOLVED"}}
            assert (await gql.data(END, end, family.token))["endSupportRelationship"]["userErrors"] == []
            left = await gql.data(
                REVIEW, {"input": {"relationshipId": relationship, "rating": rating}}, family.token
            )
            if n == 0 and len(ratings) > 1:  # the oldest of several, hidden by an admin
                hide = "mutation($r: ID!) { hideReview(input: {reviewId: $r}) { userErrors { code } } }"
                await gql.data(hide, {"r": left["leaveReview"]["review"]["id"]}, boss.token)
            else:
                reviewed[adv.advocate_id].insert(0, rating)
    query = """
    { advocates(first: 10) { edges { node { id
        reviews(first: 1) { totalCount edges { node { rating } } pageInfo { hasNextPage } } } } } }
    """
    family = await sign_up(gql)
    with statements() as sent:
        data = await gql.data(query, token=family.token)
    got = {e["node"]["id"]: e["node"]["reviews"] for e in data["advocates"]["edges"]}
    for advocate_id, shown in reviewed.items():
        page = got[advocate_id]
        assert page["totalCount"] == len(shown)
        assert [e["node"]["rating"] for e in page["edges"]] == shown[:1]
        assert page["pageInfo"]["hasNextPage"] is (len(shown) > 1)
    reads = [s for s in sent if 'FROM "reviews"' in s]
    assert len(reads) == 2, reads


async def _index_columns(table: str) -> set[tuple[str, ...]]:
    client = get_connection("default")
    if client.capabilities.dialect == "postgres":
        rows = await client.execute_query_dict(
            "SELECT indexdef FROM pg_indexes WHERE tablename = $1", [table]
        )
        return {
            tuple(c.strip() for c in str(row["indexdef"]).rsplit("(", 1)[1].rstrip(")").split(","))
            for row in rows
        }
    found: set[tuple[str, ...]] = set()
    for index in await client.execute_query_dict(f"PRAGMA index_list({table})"):
        columns = await client.execute_query_dict(f"PRAGMA index_info({index['name']})")
        found.add(tuple(str(c["name"]) for c in sorted(columns, key=lambda c: c["seqno"])))
    return found


async def test_the_vault_reads_every_request_makes_have_their_indexes(gql: GraphQLClient) -> None:
    """An advocate's Vault read asks for a family's live grants to that advocate, ending a
    relationship for its grants, a family's access log for its newest entries: each by an index,
    not a scan of every family's rows."""
    await gql.data("{ __typename }")
    assert {("family_id", "advocate_id"), ("relationship_id", "id")} <= await _index_columns("vault_grants")
    assert ("family_id", "id") in await _index_columns("vault_access_log")
