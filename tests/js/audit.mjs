// The GraphQL-over-HTTP audit of graphql-http against a running server: prints one JSON line
// per audit ({status, id, name, reason}); `tests/test_http_spec.py` runs it and reads them.
// usage: node audit.mjs http://127.0.0.1:PORT/graphql
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
const results = [];
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await audit.fn();
  results.push({ status: result.status, id: audit.id, name: audit.name, reason: result.reason ?? null });
}
console.log(JSON.stringify(results));
