"""Arguments that recur across the schema, typed once with their descriptions."""

from __future__ import annotations

from typing import Annotated

import strawberry

First = Annotated[
    int | None,
    strawberry.argument(description="The page size: how many items to return, 1 to 100."),
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
