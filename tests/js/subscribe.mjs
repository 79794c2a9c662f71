// A real graphql-ws (npm) client for the test suite: subscribes once and reports, one JSON object a
// line on stdout, what happens: connected, each result, errors, the close code.
//
//   node subscribe.mjs URL TOKEN COUNT QUERY [VARIABLES_JSON]
//
// It stops after COUNT results, or on the first error or close. Retrying is off: graphql-ws retries
// a socket closed with 4403 by default (the token might work later), which would hide the refusal.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, count, query, variables] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const timer = setTimeout(() => {
  out({ event: "timeout" });
  process.exit(2);
}, 30000);

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
  lazy: true,
  retryAttempts: 0,
  shouldRetry: () => false,
  on: {
    connected: (_socket, payload) => out({ event: "connected", payload }),
    closed: (event) => out({ event: "closed", code: event.code, reason: event.reason }),
  },
});

let received = 0;
const finish = async (exitCode) => {
  clearTimeout(timer);
  await client.dispose();
  process.exitCode = exitCode;
};

client.subscribe(
  { query, variables: variables ? JSON.parse(variables) : {} },
  {
    next: (result) => {
      out({ event: "next", result });
      received += 1;
      if (received >= Number(count)) finish(0);
    },
    error: (error) => {
      const code = error && typeof error.code === "number" ? error.code : null;
      out({ event: "error", code, error: Array.isArray(error) ? error : String(error?.reason ?? error) });
      finish(1);
    },
    complete: () => {
      out({ event: "complete" });
      finish(0);
    },
  },
);
