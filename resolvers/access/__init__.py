"""Who may see and do what: one module per domain, the only place an access rule is written.

Every path that shows a row (a field, `node(id)`, a nested connection, a subscription event or its
replay, a notification) asks the rule of the row's domain here, so a rule changes in one place. A
row the viewer may not see is absent: callers answer null or NOT_FOUND, never a hint it exists.
Each rule decides for one row and is batchable (`fetch`, `keep` decide for many rows at once).

- `core`: who the viewer is (roles, API-token scopes) and the shared shapes of a rule.
- `requests`: support requests.
- `relationships`: support relationships and the message threads they share.
- `vault`: the family, its children, evidence, timeline, EHCP cases, grants and the access log.
- `tickets`: the advocate's tickets, checklists, notes and templates.
- `accounts`: users, API tokens, advocate profiles and reviews.
- `notifications`: notifications.
"""
