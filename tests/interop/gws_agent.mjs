#!/usr/bin/env node
// An agent desktop's CometD side with the official CometD JavaScript client: handshakes with
// ext.authentication {user, password}, subscribes to /v2/me/outbound and /me/internal, and prints every
// message received as one JSON line ({"event": "message", "channel", "data"}). Lines on stdin: "exit".
//
//   node gws_agent.mjs <url> <long-polling|websocket> <user> <password> [deadline-ms]
//
// Exit codes: 0 asked to exit, 1 a step failed, 2 deadline reached.

import { createInterface } from "node:readline";

import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";

const [url, transport, user, password, deadlineArg] = process.argv.slice(2);
const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
setTimeout(() => { emit("deadline"); process.exit(2); }, Number(deadlineArg ?? 15000)).unref();

adapt();
const cometd = new CometD();
for (const name of cometd.getTransportTypes()) {
    if (name !== transport) cometd.unregisterTransport(name);
}
cometd.configure({ url, logLevel: "warn" });
cometd.handshake({ ext: { authentication: { user, password } } }, (reply) => {
    if (!reply.successful) {
        emit("fail", { reply });
        process.exit(1);
    }
    let pending = 2;
    for (const channel of ["/v2/me/outbound", "/me/internal"]) {
        cometd.subscribe(channel, (message) => emit("message", { channel: message.channel, data: message.data }),
            (sub) => {
                if (!sub.successful) { emit("fail", { reply: sub }); process.exit(1); }
                if (--pending === 0) emit("ready", { clientId: cometd.getClientId(), transport: cometd.getTransport().type });
            });
    }
});
createInterface({ input: process.stdin }).on("line", (line) => {
    if (line.includes("exit")) cometd.disconnect(() => process.exit(0));
});
