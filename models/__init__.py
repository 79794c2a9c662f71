"""Tortoise models, one module per area. `MODEL_MODULES` is what Tortoise loads."""

MODEL_MODULES = [
    "models.accounts",
    "models.families",
    "models.advocates",
    "models.support",
    "models.vault",
    "models.documents",
    "models.tickets",
    "models.notifications",
    "models.events",
    "models.rights",
]

# Model classes carry `#` comments, not docstrings: Tortoise writes a model's docstring into the
# migration as a table comment without escaping it, and an apostrophe breaks the SQL.
