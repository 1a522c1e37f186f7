// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The Node.js app of examples/workers.conf: what `pm2 start app.js -i 0`
 * would run, supervised by lbd instead. Every instance answers any HTTP
 * request with "Here we are! N", N its instance number (LBD_INSTANCE),
 * on PORT. Standard library only.
 *
 * SIGTERM (lbd's stop and rolling reload): stop accepting, let the
 * requests in flight finish, exit. lbd sends SIGKILL after kill_timeout
 * if that takes too long (keep-alive connections, say).
 */
'use strict';

const http = require('http');

const port = Number.parseInt(process.env.PORT || '3000', 10);
const instance = process.env.LBD_INSTANCE || '0';

if (!Number.isInteger(port) || port < 1 || port > 65535) {
	console.error(`app.js: PORT must be 1..65535, not "${process.env.PORT}"`);
	process.exit(2);
}

const server = http.createServer((req, res) => {
	res.writeHead(200, { 'Content-Type': 'text/plain' });
	res.end(`Here we are! ${instance}\n`);
});

server.on('error', (err) => {
	console.error(`app.js: instance ${instance}: port ${port}: ${err.message}`);
	process.exit(1);
});

// Both families on one socket ([::], dual stack), as Node does by default.
server.listen(port, () => {
	console.log(`app.js: instance ${instance} (pid ${process.pid}) listening on ${port}`);
});

process.on('SIGTERM', () => {
	server.close(() => process.exit(0));
	server.closeIdleConnections();
});
