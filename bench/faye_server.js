'use strict';
// Reference Bayeux server for bench/fanout.py: Faye 1.4 (npm `faye`) on a plain Node http server.
// Usage: node bench/faye_server.js --port P [--host 127.0.0.1] [--mount /bayeux] [--timeout 30]
// Prints "listening <url>" on stdout once ready. Loopback only.
const http = require('http');
const faye = require('faye');

function arg(name, dflt) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const host = arg('host', '127.0.0.1');
const port = parseInt(arg('port', '8090'), 10);
const mount = arg('mount', '/bayeux');
const timeout = parseFloat(arg('timeout', '30'));

if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') {
  console.error('faye_server: loopback addresses only');
  process.exit(2);
}

const bayeux = new faye.NodeAdapter({ mount, timeout });
const server = http.createServer();
server.keepAliveTimeout = 65000;
server.headersTimeout = 66000;
server.requestTimeout = 0; // long-polling requests are held up to `timeout`
server.maxConnections = 100000;
bayeux.attach(server);
server.listen(port, host, 1024, () => {
  console.log(`listening http://${host}:${port}${mount}`);
});

function stop() {
  server.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
