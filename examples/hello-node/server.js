// hello-node: a plain Node.js backend for Gatehouse (or IIS + ANCM).
// It listens on 127.0.0.1:$ASPNETCORE_PORT, rejects requests without the
// pairing token (ASPNETCORE_TOKEN in MS-ASPNETCORE-TOKEN) with 400, and
// stops gracefully on the module's shutdown request or SIGTERM.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');

const port = Number(process.env.ASPNETCORE_PORT || process.env.PORT || 3000);
const token = process.env.ASPNETCORE_TOKEN || '';
const pathBase = (process.env.ASPNETCORE_APPL_PATH || '/').replace(/\/+$/, '');

function tokenMatches(got) {
  const a = Buffer.from(String(got || ''));
  const b = Buffer.from(token);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

function stripBase(path) {
  if (pathBase && path.toLowerCase().startsWith(pathBase.toLowerCase())) {
    const rest = path.slice(pathBase.length);
    if (rest === '' || rest.startsWith('/')) return rest || '/';
  }
  return path;
}

const server = http.createServer((req, res) => {
  if (token && !tokenMatches(req.headers['ms-aspnetcore-token'])) {
    console.error(`rejected ${req.method} ${req.url}: MS-ASPNETCORE-TOKEN does not match`);
    res.writeHead(400).end();
    return;
  }
  const path = stripBase(new URL(req.url, 'http://localhost').pathname);
  const event = String(req.headers['ms-aspnetcore-event'] || '').toLowerCase();
  if (token && req.method === 'POST' && path.toLowerCase() === '/iisintegration' && event === 'shutdown') {
    res.writeHead(202, { 'Content-Length': '0' }).end();
    stop('shutdown request');
    return;
  }
  // The right-most X-Forwarded-For entry is the client Gatehouse saw.
  const client = String(req.headers['x-forwarded-for'] || req.socket.remoteAddress).split(',').pop().trim();
  const scheme = String(req.headers['x-forwarded-proto'] || 'http').split(',').pop().trim();
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(`Hello from Node.js ${process.version}, pid ${process.pid}\nyou are ${client} over ${scheme}, path ${path}\n`);
});

function stop(reason) {
  console.log(`stopping (${reason})`);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 8000).unref(); // under the default shutdownTimeLimit of 10 s
}

process.on('SIGTERM', () => stop('SIGTERM'));
server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
