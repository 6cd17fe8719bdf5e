// Floor for the operator console's round trip: a Node `ws` server that sends
// every message straight back. Compression off, as the console runs it.
//
//   node bench/node_ws_echo.js <port> [host]
"use strict";

const { WebSocketServer } = require("ws");

const port = Number(process.argv[2] || process.env.PORT || 8002);
const host = process.argv[3] || "127.0.0.1";
const wss = new WebSocketServer({ port, host, perMessageDeflate: false, maxPayload: 65536 });

wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on("listening", () => {
  console.log(`node ws echo on ws://${host}:${port}/ (pid ${process.pid})`);
});

function stop() {
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
