#!/usr/bin/env node
// One agent with the official CometD JavaScript client (npm cometd + cometd-nodejs-client) for the cluster
// chaos test: handshakes with ext.authentication, subscribes to /v2/me/outbound in its /meta/handshake
// listener (so again after every re-handshake), resumes from its last replayId with Salesforce's replay
// extension (written here: the npm package has none), and prints one JSON line per outbound message:
//   {"event": "message", "replayId", "type", "ref", "handle", "replayed"}
// and {"event": "subscribed" | "handshake" | "unsuccessful", ...} for the steps. Line "exit" on stdin: disconnect.
//
//   node js_agent.mjs <url> <long-polling|websocket> <user> <password>

import { createInterface } from "node:readline";

import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";

const OUTBOUND = "/v2/me/outbound";
const [url, transport, user, password] = process.argv.slice(2);
const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");

adapt();
const cometd = new CometD();
for (const name of cometd.getTransportTypes()) {
    if (name !== transport) cometd.unregisterTransport(name);
}

// Salesforce's replay extension: ext.replay in the handshake; in each subscribe the last id seen (-1 at first).
const ids = {};
let replay = false;
const advance = (subscription, id) => {
    if (Number.isInteger(id) && id > (ids[subscription] ?? -1)) ids[subscription] = id;
};
cometd.registerExtension("replay", {
    outgoing(message) {
        if (message.channel === "/meta/handshake") {
            message.ext = { ...message.ext, replay: true };
        } else if (message.channel === "/meta/subscribe" && replay) {
            message.ext = { ...message.ext, replay: { [message.subscription]: ids[message.subscription] ?? -1 } };
        }
        return message;
    },
    incoming(message) {
        if (message.channel === "/meta/handshake") {
            replay = Boolean(message.successful && message.ext && message.ext.replay === true);
        } else if (message.channel === "/meta/subscribe") {
            const baselines = message.successful && message.ext && message.ext.replay;
            for (const [subscription, id] of Object.entries(baselines || {})) advance(subscription, id);
        } else if (message.channel === OUTBOUND) {
            advance(OUTBOUND, message.data && message.data.event && message.data.event.replayId);
        }
        return message;
    },
});

cometd.configure({ url, logLevel: "warn" });
cometd.addListener("/meta/unsuccessful", (m) => emit("unsuccessful", { channel: m.channel, error: m.error }));
cometd.addListener("/meta/handshake", (m) => {
    emit("handshake", { successful: m.successful, error: m.error });
    if (!m.successful) return;
    cometd.subscribe(OUTBOUND, (message) => {
        const data = message.data || {};
        emit("message", {
            replayId: data.event ? data.event.replayId : null,
            type: data.notificationType,
            ref: data.referenceId ?? null,
            handle: data.record ? data.record.recordHandle : null,
            replayed: Boolean(message.ext && message.ext.replayed),
        });
    }, (reply) => emit("subscribed", { successful: reply.successful, error: reply.error }));
});
cometd.handshake({ ext: { authentication: { user, password } } });

createInterface({ input: process.stdin }).on("line", (line) => {
    if (line.includes("exit")) cometd.disconnect(() => process.exit(0));
}).on("close", () => process.exit(0));
