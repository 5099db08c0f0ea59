// A WebSocket client on Node's `ws`, driven by tests/test_integrations_node.py.
// Usage: node ws_client.js URL SCENARIO [DEFLATE]; prints one JSON result.
"use strict";
const WebSocket = require("ws");

const [url, scenario, deflate] = process.argv.slice(2);
const options = { perMessageDeflate: deflate === "deflate", maxPayload: 64 << 20 };

function open(protocols) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols || [], options);
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

function next(ws) {
  return new Promise((resolve) => ws.once("message", (data, isBinary) => resolve({ data, isBinary })));
}

function closed(ws) {
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
}

const scenarios = {
  async echo() {
    const ws = await open();
    const sizes = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20];
    const results = [];
    for (const n of sizes) {
      const payload = Buffer.alloc(n, 7);
      ws.send(payload, { binary: true });
      const bin = await next(ws);
      const text = "é".repeat(Math.floor(n / 2));
      ws.send(text);
      const txt = await next(ws);
      results.push(bin.isBinary && Buffer.compare(bin.data, payload) === 0
        && !txt.isBinary && txt.data.toString() === text);
    }
    const fragmented = ["frag", "mented ", "message"];
    fragmented.forEach((part, k) => ws.send(part, { fin: k === fragmented.length - 1 }));
    const whole = await next(ws);
    ws.close(1000);
    const end = await closed(ws);
    return { sizes, results, fragmented: whole.data.toString(), close: end,
             extensions: ws.extensions };
  },
  async ping() {
    const ws = await open();
    const pong = new Promise((resolve) => ws.once("pong", (data) => resolve(data.toString())));
    ws.ping("are you there");
    const got = await pong;
    ws.close(1000);
    await closed(ws);
    return { pong: got };
  },
  async close() {
    const ws = await open();
    ws.close(4001, "bye");
    return closed(ws);
  },
  async server_close() {
    const ws = await open();
    ws.send("close me");
    return closed(ws);
  },
  async subprotocol() {
    const ws = await open(["chat", "echo"]);
    const protocol = ws.protocol;
    ws.close(1000);
    await closed(ws);
    return { protocol };
  },
  deny() {
    // a denial response (ASGI websocket.http.response): status, headers, body
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, [], options);
      ws.once("unexpected-response", (req, res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode, type: res.headers["content-type"],
                                      body: Buffer.concat(chunks).toString("hex") }));
      });
      ws.once("open", () => reject(new Error("the upgrade was accepted")));
    });
  },
  async oversize() {
    const ws = await open();
    ws.send(Buffer.alloc(2 << 20, 1));
    return closed(ws);
  },
};

scenarios[scenario]().then(
  (result) => { console.log(JSON.stringify(result)); process.exit(0); },
  (err) => { console.log(JSON.stringify({ error: String(err) })); process.exit(1); },
);
