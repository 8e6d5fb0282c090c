// Drives @segment/analytics-node (node_modules, package-lock.json) against HOST with WRITE_KEY:
// identify, group, track, page and an anonymous track, flushed as one batch. Prints one JSON line:
// the errors the client reported and the requests it made (tests/events/test_analytics_node.py).
const { Analytics } = require("@segment/analytics-node");

const analytics = new Analytics({
  writeKey: process.env.WRITE_KEY,
  host: process.env.HOST,
  flushAt: 20, // all of the calls below in one /v1/batch request
  flushInterval: 60000,
  maxRetries: 0,
  httpRequestTimeout: 10000,
});
const errors = [];
const requests = [];
analytics.on("error", (error) => errors.push({ code: error.code, reason: String(error.reason || error.message || error) }));
analytics.on("http_request", (request) => {
  const body = typeof request.body === "string" ? JSON.parse(request.body) : request.body;
  requests.push({ url: request.url, method: request.method, count: body.batch.length });
});

const userId = "node-u1";
analytics.identify({ userId, traits: { email: "nora@acme.test", name: "Nora", plan: "pro" } });
analytics.group({ userId, groupId: "acme-node", traits: { name: "Acme Node" } });
analytics.track({ userId, event: "Added photo", properties: { size: 3 } });
analytics.page({ userId, category: "Docs", name: "Home", properties: { path: "/docs" } });
analytics.track({ anonymousId: "anon-node", event: "Opened email" });

analytics.closeAndFlush({ timeout: 20000 }).then(() => {
  process.stdout.write(JSON.stringify({ errors, requests }) + "\n");
});
