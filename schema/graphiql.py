"""GraphiQL, served by the server itself: the page and its assets come from this server alone, so
it works offline and behind a strict proxy, and no third-party CDN sees who uses the API.

Unlike strawberry's page it keeps nothing of the user's in the URL or the browser's storage: no
variables in the address bar (they can name a child), and the `Authorization` header is kept for
the tab only (GraphiQL's `shouldPersistHeaders` off), not in localStorage.
"""

from __future__ import annotations

from pathlib import Path

from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static" / "graphiql"
# Versioned, so that the assets can be cached for good and an upgrade is a new path.
PREFIX = "/graphiql/3.8.3"

PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="robots" content="noindex" />
    <title>SENVault API: GraphiQL</title>
    <style>
      body { height: 100%; margin: 0; width: 100%; overflow: hidden; }
      #graphiql { height: 100vh; }
    </style>
    <link rel="stylesheet" href="{prefix}/graphiql.min.css" />
    <script src="{prefix}/react.production.min.js"></script>
    <script src="{prefix}/react-dom.production.min.js"></script>
    <script src="{prefix}/graphiql.min.js"></script>
  </head>
  <body>
    <div id="graphiql">Loading…</div>
    <script>
      const url = window.location.href.split("?")[0];
      const socket = new URL(url);
      socket.protocol = socket.protocol === "https:" ? "wss:" : "ws:";
      // `?q=` prefills the editor (`?query=` would run the query over GET instead).
      const query = new URLSearchParams(window.location.search).get("q") || undefined;
      const fetcher = GraphiQL.createFetcher({ url, subscriptionUrl: socket.toString() });
      ReactDOM.createRoot(document.getElementById("graphiql")).render(
        React.createElement(GraphiQL, {
          fetcher,
          defaultQuery:
            "# Sign in with logIn, then put your token under Headers:\\n" +
            "# {\\"Authorization\\": \\"Bearer <token>\\"}\\n{ __typename }\\n",
          query,
          shouldPersistHeaders: false,
          defaultEditorToolsVisibility: true,
        }),
      );
    </script>
  </body>
</html>
""".replace("{prefix}", PREFIX)


def assets() -> StaticFiles:
    """The page's scripts and styles, for `Mount(PREFIX, assets())`."""
    return StaticFiles(directory=ASSETS)
