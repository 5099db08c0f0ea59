// An EventSource client on Node's `eventsource`, driven by
// tests/test_integrations_node.py. Usage: node sse_client.js URL COUNT;
// collects COUNT events (reconnecting as browsers do) and prints them.
"use strict";
const { EventSource } = require("eventsource");

const [url, count] = process.argv.slice(2);
const events = [];
let opens = 0;
const source = new EventSource(url);
source.onopen = () => { opens += 1; };
function record(e) {
  events.push({ type: e.type, data: e.data, id: e.lastEventId });
  if (events.length >= Number(count)) {
    source.close();
    console.log(JSON.stringify({ events, opens }));
    process.exit(0);
  }
}
source.onmessage = record;
source.addEventListener("tick", record);
setTimeout(() => { console.log(JSON.stringify({ error: "timeout", events, opens })); process.exit(1); }, 20000);
