#!/usr/bin/env node
// Runs the official CometD JavaScript client (npm `cometd` + `cometd-nodejs-client`) against a Bayeux
// server over real sockets and prints one JSON object per line for every observed step.
//
//   node cometd_client.mjs <url> <long-polling|websocket> [options]
//
//   --scenario basic   handshake, subscribe, publish --count messages, receive them, disconnect (default)
//   --scenario agent   handshake and subscribe (again after every re-handshake), then obey JSON commands
//                      read from stdin, one per line:
//                        {"cmd": "publish", "data": {...}, "tab": 0}   tab 0 (default) publishes on --channel
//                        {"cmd": "status", "tab": 0}                   print the tab's status and clientId
//                        {"cmd": "disconnect"}                         disconnect every tab, then exit
//                        {"cmd": "exit"}                               exit at once
//   --channel C        channel to subscribe and publish on (default /chat/demo)
//   --count N          basic: how many messages to publish (default 1; data {"text":"hello"} when 1)
//   --ack              register the AckExtension
//   --timesync         register the TimeSyncExtension
//   --wire             also print every Bayeux message sent/received ({"event":"wire",...})
//   --name NAME        label added to every line
//   --deadline-ms N    exit with code 2 after N ms whatever happens (default 12000)
//   --tabs N           agent: N CometD clients in this one process, sharing its cookie jar like the tabs
//                      of one browser (default 1); every line carries the client's index as `tab`
//
// Exit codes: 0 scenario completed, 1 a step failed, 2 deadline reached, 3 bad usage.
// Lines: {"event": "handshake"|"subscribed"|"connected"|"multiple_clients"|"published"|"message"|
//         "unsuccessful"|"server_disconnect"|"disconnected"|"status"|"timesync"|"wire"|"done"|"fail"|
//         "deadline", ...}

import { parseArgs } from "node:util";
import { Console } from "node:console";
import { createInterface } from "node:readline";

import { adapt } from "cometd-nodejs-client";
import { AckExtension, CometD, TimeSyncExtension } from "cometd";

const { values: opts, positionals } = parseArgs({
    allowPositionals: true,
    options: {
        scenario: { type: "string", default: "basic" },
        channel: { type: "string", default: "/chat/demo" },
        count: { type: "string", default: "1" },
        ack: { type: "boolean", default: false },
        timesync: { type: "boolean", default: false },
        wire: { type: "boolean", default: false },
        name: { type: "string", default: "cometd" },
        "deadline-ms": { type: "string", default: "12000" },
        "log-level": { type: "string", default: "warn" },
        tabs: { type: "string", default: "1" },
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
    process.stderr.write("usage: node cometd_client.mjs <url> <long-polling|websocket> [--scenario basic|agent] ...\n");
    process.exit(3);
}

const deadlineMs = Number(opts["deadline-ms"]);
setTimeout(() => {
    emit("deadline", { after_ms: deadlineMs });
    process.exit(2);
}, deadlineMs).unref();
// Keep the event loop alive until the deadline even when no socket is open (between reconnects).
const keepAlive = setInterval(() => {}, 1000);

// Node adapter: XMLHttpRequest with a cookie jar shared by the clients of this process, WebSocket from `ws`.
adapt();
// The CometD client logs through window.console; stdout is reserved for the JSON lines.
globalThis.window.console = new Console({ stdout: process.stderr, stderr: process.stderr });

const channel = opts.channel;
const count = Number(opts.count);
const tabs = Number(opts.tabs);
if (!(tabs >= 1) || (tabs > 1 && opts.scenario !== "agent")) {
    process.stderr.write("--tabs N needs N >= 1, and N > 1 only with --scenario agent\n");
    process.exit(3);
}

function payload(i) {
    return count === 1 ? { text: "hello" } : { text: "hello", seq: i };
}

// One CometD client (a browser tab). Every line it prints carries its index as `tab`.
function makeClient(tab) {
    const say = (event, fields = {}) => emit(event, { tab, ...fields });
    const cometd = new CometD(`${opts.name}-${tab}`);
    if (transport === "long-polling") {
        cometd.unregisterTransport("websocket");
        cometd.unregisterTransport("callback-polling");
    } else {
        cometd.unregisterTransport("long-polling");
        cometd.unregisterTransport("callback-polling");
    }
    cometd.configure({ url, logLevel: opts["log-level"], maxNetworkDelay: 5000 });

    // Registered first: first to see incoming messages, last to see outgoing ones (what is on the wire).
    if (opts.wire) {
        cometd.registerExtension("wire", {
            incoming(message) {
                say("wire", { dir: "in", message: JSON.parse(JSON.stringify(message)) });
                return message;
            },
            outgoing(message) {
                say("wire", { dir: "out", message: JSON.parse(JSON.stringify(message)) });
                return message;
            },
        });
    }
    let timesync = null;
    if (opts.ack) {
        cometd.registerExtension("ack", new AckExtension());
    }
    if (opts.timesync) {
        timesync = new TimeSyncExtension();
        cometd.registerExtension("timesync", timesync);
    }

    const received = [];
    let handshakes = 0;
    let published = false;
    let connected = false;
    let disconnecting = false;
    const transportType = () => (cometd.getTransport() ? cometd.getTransport().type : null);

    function disconnect(onDone) {
        if (disconnecting) {
            return;
        }
        disconnecting = true;
        if (timesync) {
            say("timesync", { lag: timesync.getNetworkLag(), offset: timesync.getTimeOffset() });
        }
        cometd.disconnect((reply) => {
            say("disconnected", { successful: reply.successful, error: reply.error, status: cometd.getStatus() });
            onDone(reply.successful === true);
        });
    }

    function publishOne(data) {
        cometd.publish(channel, data, (reply) => {
            say("published", { channel: reply.channel, successful: reply.successful, error: reply.error, data });
            if (!reply.successful && opts.scenario === "basic") {
                finish(1, { step: "publish", error: reply.error });
            }
        });
    }

    function onMessage(message) {
        const seen = { channel: message.channel, data: message.data };
        if (message.ext !== undefined) {
            seen.ext = message.ext;
        }
        say("message", seen);
        received.push(message);
        if (opts.scenario === "basic" && received.length === count) {
            // Linger briefly so that a duplicate delivery would be seen (and counted by the test).
            setTimeout(() => disconnect((ok) => finish(ok ? 0 : 1)), 300);
        }
    }

    cometd.addListener("/meta/handshake", (reply) => {
        handshakes += 1;
        say("handshake", {
            successful: reply.successful,
            clientId: reply.clientId,
            reestablish: reply.reestablish,
            transport: transportType(),
            supportedConnectionTypes: reply.supportedConnectionTypes,
            advice: reply.advice,
            ext: reply.ext,
            error: reply.error,
            count: handshakes,
        });
        if (!reply.successful) {
            return;
        }
        if (handshakes === 1) {
            // The next tab opens once this one has its session (and the browser cookie is in the jar).
            startTab(tab + 1);
        }
        // Subscriptions do not survive a re-handshake: (re)subscribe on every successful handshake.
        cometd.batch(() => {
            cometd.subscribe(channel, onMessage, (sub) => {
                say("subscribed", {
                    successful: sub.successful,
                    subscription: sub.subscription,
                    error: sub.error,
                    clientId: cometd.getClientId(),
                    transport: transportType(),
                });
                if (!sub.successful) {
                    if (opts.scenario === "basic") {
                        finish(1, { step: "subscribe", error: sub.error });
                    }
                    return;
                }
                if (opts.scenario === "basic" && !published) {
                    published = true;
                    for (let i = 0; i < count; ++i) {
                        publishOne(payload(i));
                    }
                }
            });
        });
    });

    cometd.addListener("/meta/connect", (reply) => {
        if (reply.successful && !connected) {
            say("connected", { clientId: cometd.getClientId(), advice: reply.advice, ext: reply.ext });
        }
        if (reply.successful && reply.advice && reply.advice["multiple-clients"]) {
            say("multiple_clients", { clientId: cometd.getClientId(), advice: reply.advice });
        }
        connected = reply.successful === true;
    });

    cometd.addListener("/meta/unsuccessful", (reply) => {
        say("unsuccessful", {
            channel: reply.channel,
            error: reply.error,
            advice: reply.advice,
            failure: reply.failure ? { reason: reply.failure.reason, httpCode: reply.failure.httpCode } : undefined,
        });
    });

    // An unsolicited /meta/disconnect (server-side disconnect) ends the session.
    cometd.addListener("/meta/disconnect", (reply) => {
        if (!disconnecting) {
            say("server_disconnect", { successful: reply.successful, status: cometd.getStatus() });
        }
    });

    return {
        start: () => cometd.handshake(),
        publish: publishOne,
        disconnect,
        isDisconnecting: () => disconnecting,
        status: () => say("status", { status: cometd.getStatus(), clientId: cometd.getClientId() }),
    };
}

const clients = Array.from({ length: tabs }, (_, i) => makeClient(i));

// Agent: disconnect every tab, then exit (non-zero if any disconnect failed).
function disconnectAll() {
    let pending = clients.length;
    let allOk = true;
    for (const client of clients) {
        client.disconnect((ok) => {
            allOk = allOk && ok;
            pending -= 1;
            if (pending === 0) {
                clearInterval(keepAlive);
                finish(allOk ? 0 : 1);
            }
        });
    }
}

if (opts.scenario === "agent") {
    const lines = createInterface({ input: process.stdin });
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
        const client = clients[command.tab || 0];
        if (client === undefined) {
            finish(3, { step: "command", error: "no tab " + command.tab });
        } else if (command.cmd === "publish") {
            client.publish(command.data);
        } else if (command.cmd === "disconnect") {
            disconnectAll();
        } else if (command.cmd === "status") {
            client.status();
        } else if (command.cmd === "exit") {
            finish(0);
        } else {
            finish(3, { step: "command", error: "unknown command " + command.cmd });
        }
    });
    // The test went away: do not outlive it.
    lines.on("close", () => {
        if (!clients[0].isDisconnecting()) {
            finish(0, { reason: "stdin closed" });
        }
    });
}

function startTab(index) {
    if (index < clients.length) {
        clients[index].start();
    }
}

startTab(0);
