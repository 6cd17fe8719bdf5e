// Baseline: a Server-Sent Events server the way the classic Node tutorial
// writes one. http.createServer, the open responses kept in a Set, and once a
// second one `data:` frame written to every client with a plain res.write.
// The frame is encoded once per tick (the tutorial re-stringifies per client;
// encoding once makes this baseline stronger, not weaker). No dependencies.
//
//   node bench/node_sse_server.js <port> [host]
"use strict";

const http = require("http");

const port = Number(process.argv[2] || process.env.PORT || 8001);
const host = process.argv[3] || "127.0.0.1";
const clients = new Set();
let seq = 0;

// About the size of one of the dashboard's metrics events (~1.45 KB of JSON since the
// compact form; it was ~2.6 KB before), so both servers write about the same bytes.
function payload() {
  const cores = [];
  for (let i = 0; i < 16; i++) cores.push(Math.round(Math.random() * 1000) / 10);
  const processes = [];
  for (let i = 0; i < 12; i++) {
    processes.push({
      pid: 1000 + i,
      name: "process-" + i,
      user: "root",
      cpu: Math.round(Math.random() * 1000) / 10,
      rss: Math.floor(Math.random() * 1e9),
      status: "running",
    });
  }
  return {
    cpu: { total: Math.round(Math.random() * 1000) / 10, cores },
    load: [Math.random(), Math.random(), Math.random()],
    memory: { total: 25273155584, used: Math.floor(Math.random() * 1e10), percent: 20.5 },
    swap: { total: 0, used: 0, percent: 0 },
    net: { lo: { rx: Math.random() * 1e6, tx: Math.random() * 1e6 } },
    processes,
  };
}

const server = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ status: "ok", clients: clients.size, seq }));
    return;
  }
  if (req.url !== "/events") {
    res.writeHead(404);
    res.end();
    return;
  }
  res.writeHead(200, {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    Connection: "keep-alive",
  });
  res.write(":connected\n\n");
  clients.add(res);
  req.on("close", () => clients.delete(res));
});

setInterval(() => {
  seq += 1;
  const data = JSON.stringify({ ts: Date.now() / 1000, seq, ...payload() });
  const frame = `id: ${seq}\ndata: ${data}\n\n`;
  for (const res of clients) res.write(frame);
}, 1000);

server.listen(port, host, () => {
  console.log(`node sse server on http://${host}:${port}/events (pid ${process.pid})`);
});

function stop() {
  for (const res of clients) res.end();
  server.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
