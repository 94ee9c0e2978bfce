#!/usr/bin/env node
// Runs a Faye Node client (npm `faye` 1.4) against a Bayeux server over real sockets and prints one JSON
// object per line for every observed step.
//
//   node faye_client.js <url> <long-polling|websocket> [options]
//
//   --scenario basic   connect, subscribe, publish {"text":"hello"}, receive it, disconnect (default)
//   --scenario agent   connect and subscribe (Faye re-subscribes by itself after a re-handshake), then
//                      obey JSON commands read from stdin, one per line:
//                        {"cmd": "publish", "data": {...}}   publish on --channel
//                        {"cmd": "disconnect"}               disconnect, then exit
//                        {"cmd": "exit"}                     exit at once
//   --channel C        channel to subscribe and publish on (default /chat/demo)
//   --wire             also print every Bayeux message sent/received ({"event":"wire",...})
//   --name NAME        label added to every line
//   --deadline-ms N    exit with code 2 after N ms whatever happens (default 12000)
//
// Faye always handshakes over HTTP long-polling (its mandatory connection type) and then moves to the
// best transport the server offers: "websocket" leaves that on, "long-polling" disables websocket.
//
// Exit codes: 0 scenario completed, 1 a step failed, 2 deadline reached, 3 bad usage.

"use strict";

const { parseArgs } = require("node:util");
const readline = require("node:readline");

const faye = require("faye");

const { values: opts, positionals } = parseArgs({
    allowPositionals: true,
    options: {
        scenario: { type: "string", default: "basic" },
        channel: { type: "string", default: "/chat/demo" },
        wire: { type: "boolean", default: false },
        name: { type: "string", default: "faye" },
        "deadline-ms": { type: "string", default: "12000" },
    },
});

function emit(event, fields = {}) {
    // Pipes are written synchronously on POSIX, so nothing is lost when process.exit() follows.
    process.stdout.write(JSON.stringify({ event, name: opts.name, t: Date.now(), ...fields }) + "\n");
}

function finish(code, fields = {}) {
    emit(code === 0 ? "done" : "fail", { code, ...fields });
    process.exit(code);
}

const [url, transport] = positionals;
if (!url || !["long-polling", "websocket"].includes(transport) || !["basic", "agent"].includes(opts.scenario)) {
    process.stderr.write("usage: node faye_client.js <url> <long-polling|websocket> [--scenario basic|agent] ...\n");
    process.exit(3);
}

const deadlineMs = Number(opts["deadline-ms"]);
setTimeout(() => {
    emit("deadline", { after_ms: deadlineMs });
    process.exit(2);
}, deadlineMs).unref();

const client = new faye.Client(url, { timeout: 10, retry: 1 });
if (transport === "long-polling") {
    client.disable("websocket");
}

const channel = opts.channel;
let handshakes = 0;
let disconnecting = false;
let subscribedOnce = false;

function connectionType() {
    // The transport Faye currently uses (not part of its public API, read for the test's report).
    return client._dispatcher.connectionType || null;
}

// Observes every message after Faye's own processing on the way out and before it on the way in.
client.addExtension({
    outgoing(message, callback) {
        if (opts.wire) {
            emit("wire", { dir: "out", message: JSON.parse(JSON.stringify(message)) });
        }
        callback(message);
    },
    incoming(message, callback) {
        if (opts.wire) {
            emit("wire", { dir: "in", message: JSON.parse(JSON.stringify(message)) });
        }
        if (message.channel === "/meta/handshake") {
            handshakes += 1;
            emit("handshake", {
                successful: message.successful,
                clientId: message.clientId,
                supportedConnectionTypes: message.supportedConnectionTypes,
                advice: message.advice,
                error: message.error,
                count: handshakes,
            });
        } else if (message.channel === "/meta/subscribe") {
            // Faye re-subscribes by itself after a re-handshake; every subscribe reply is reported.
            emit("subscribe_reply", {
                successful: message.successful,
                subscription: message.subscription,
                error: message.error,
                clientId: client._dispatcher.clientId,
            });
        } else if (message.channel === "/meta/connect" && message.successful === false) {
            emit("unsuccessful", { channel: message.channel, error: message.error, advice: message.advice });
        }
        callback(message);
    },
});

client.on("transport:down", () => emit("transport_down", {}));
client.on("transport:up", () => emit("transport_up", { connectionType: connectionType() }));

function disconnect() {
    if (disconnecting) {
        return;
    }
    disconnecting = true;
    const promise = client.disconnect();
    if (!promise) {
        finish(1, { step: "disconnect", error: "client was not connected" });
        return;
    }
    promise.then(
        () => {
            emit("disconnected", { successful: true });
            finish(0);
        },
        (error) => {
            emit("disconnected", { successful: false, error: String(error && error.message) });
            finish(1, { step: "disconnect" });
        },
    );
}

function publishOne(data) {
    client.publish(channel, data).then(
        () => emit("published", { channel, successful: true, data }),
        (error) => {
            emit("published", { channel, successful: false, data, error: String(error && error.message) });
            if (opts.scenario === "basic") {
                finish(1, { step: "publish" });
            }
        },
    );
}

const subscription = client.subscribe(channel).withChannel((ch, data) => {
    emit("message", { channel: ch, data });
    if (opts.scenario === "basic") {
        // Linger briefly so that a duplicate delivery would be seen (and counted by the test).
        setTimeout(disconnect, 300);
    }
});

subscription.then(
    () => {
        if (subscribedOnce) {
            return;
        }
        subscribedOnce = true;
        emit("subscribed", {
            successful: true,
            subscription: channel,
            clientId: client._dispatcher.clientId,
            connectionType: connectionType(),
        });
        if (opts.scenario === "basic") {
            publishOne({ text: "hello" });
        }
    },
    (error) => {
        emit("subscribed", { successful: false, subscription: channel, error: String(error && error.message) });
        finish(1, { step: "subscribe" });
    },
);

if (opts.scenario === "agent") {
    const lines = readline.createInterface({ input: process.stdin });
    lines.on("line", (line) => {
        if (!line.trim()) {
            return;
        }
        let command;
        try {
            command = JSON.parse(line);
        } catch (x) {
            finish(3, { step: "command", error: String(x) });
            return;
        }
        if (command.cmd === "publish") {
            publishOne(command.data);
        } else if (command.cmd === "disconnect") {
            disconnect();
        } else if (command.cmd === "status") {
            emit("status", { clientId: client._dispatcher.clientId, connectionType: connectionType() });
        } else if (command.cmd === "exit") {
            finish(0);
        } else {
            finish(3, { step: "command", error: "unknown command " + command.cmd });
        }
    });
    lines.on("close", () => {
        if (!disconnecting) {
            finish(0, { reason: "stdin closed" });
        }
    });
}
