"""Arguments that recur across the schema, typed once with their descriptions."""

from __future__ import annotations

from typing import Annotated

import strawberry

First = Annotated[
    int | None,
    strawberry.argument(
        description="How many items to return from the start of the list (after `after`), 0 to 100."
    ),
]
Last = Annotated[
    int | None,
    strawberry.argument(
        description=(
            "How many items to return from the end of the list (before `before`), 0 to 100, in the "
            "list's own order. Takes the place of `first`'s default; give one of the two."
        )
    ),
]
Before = Annotated[
    str | None,
    strawberry.argument(
        description=(
            "Return the items before this cursor: `pageInfo.startCursor` of the page after. "
            "With `last`, pages backwards from the end of the list."
        )
    ),
]
After = Annotated[
    str | None,
    strawberry.argument(
        description=(
            "Return the items after this cursor: `pageInfo.endCursor` of the page before. "
            "Leave out for the first page."
        )
    ),
]
Since = Annotated[
    str | None,
    strawberry.argument(
        description=(
            "Replay the events after this cursor (the `cursor` of the last event received) before "
            "the live ones, each once and in order. Leave out for live events only."
        )
    ),
]
INPUT = strawberry.argument(description="What to do: each field is described on the input type.")
