// The peer of scripts/bench-serve: GitHub's own webhook library for Node, @octokit/webhooks, in
// a minimal server, as its README shows it: createNodeMiddleware on Node's http server, with
// the webhook secret, verifying every signature; library defaults otherwise, but for its logger:
// the default one prints each rejected delivery as an error object with the whole payload
// (kilobytes per delivery), where formwork writes one line; this one writes one line too, so
// that the two differ in what they do with a delivery, not in how much they log about it.
//
// It does less than `formwork serve`: it verifies and parses each delivery and calls its
// handlers, but keeps no record of delivery ids (no deduplication) and queues nothing. Its
// handler only counts what it was given, for the benchmark's check that nothing was lost.
//
//   BENCH_SECRET=... node peer.mjs PORT
//
// Answers POST /webhooks/github (200 "ok", 400 on a bad signature: the library's codes), and
// GET /stats: {"received": {event: count}, "errors": count}. Listens on 127.0.0.1 only.

import http from "node:http";
import { Webhooks, createNodeMiddleware } from "@octokit/webhooks";

const port = Number(process.argv[2]);
const secret = process.env.BENCH_SECRET;
if (!port || !secret) {
  console.error("usage: BENCH_SECRET=... node peer.mjs PORT");
  process.exit(64);
}

const webhooks = new Webhooks({ secret });
const received = {};
let errors = 0;
webhooks.onAny(({ name }) => {
  received[name] = (received[name] ?? 0) + 1;
});
webhooks.onError(() => {
  errors++;
});
const log = {
  debug() {},
  info() {},
  warn: (...xs) => console.warn(new Date().toISOString(), "WARN", ...xs.map(String)),
  error: (e) => console.error(new Date().toISOString(), "ERROR webhook delivery rejected:", e?.message ?? String(e)),
};
const middleware = createNodeMiddleware(webhooks, { path: "/webhooks/github", log });

const server = http.createServer(async (req, res) => {
  if (req.method === "GET" && req.url === "/stats") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ received, errors }));
    return;
  }
  if (!(await middleware(req, res))) {
    res.writeHead(404).end();
  }
});
server.listen(port, "127.0.0.1", () => {
  console.log(`peer listening on http://127.0.0.1:${port}`);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
