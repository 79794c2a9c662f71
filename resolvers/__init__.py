"""The domain: plain async functions taking the acting viewer and plain values.

Nothing here imports strawberry; `schema/` converts GraphQL shapes to and from these calls.
"""
