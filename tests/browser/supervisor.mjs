#!/usr/bin/env node
// Drives the supervisor wallboard (/desktop/supervisor) in headless Chromium and prints one JSON line per
// step: each step waits until the page's numbers are the ones the backend's actions (done by
// test_supervisor.py when it reads the previous line) must produce, then reports what the page shows.
//
//   node supervisor.mjs <base-url> <user> <password> <screenshot-dir> <websocket|long-polling> [last-step]
//
//   signed-in  -> the test creates waiting-field contacts (SNtial): 2 in Support, 1 in Express
//   routed     -> (all routed; the Express one elapsed) it imports 3 dialler contacts (jtel) into Retention
//   imported   -> agent1 connects, starts a preview session in Callbacks and takes a record (GWS)
//   taken      -> it completes the record
//   completed  -> it drops the wallboard's CometD session and imports one more contact meanwhile
//   recovered  -> agent1 disconnects
//   offline    -> done
//
// Environment: CHROMIUM_PATH (default /usr/bin/chromium), DESKTOP_VIEWPORT (default 1360x860).
// Exit codes: 0 every step passed, 1 a step failed ("fail" says which; failure.png shows the page), 2 deadline.

import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { emit, launch } from "./browser.mjs";

const [base, user, password, shots, transport, lastStep] = process.argv.slice(2);
class Stop extends Error {}
const reached = (event, fields = {}) => {
    emit(event, fields);
    if (event === lastStep) throw new Stop();
};
setTimeout(() => { emit("deadline"); process.exit(2); }, 120_000).unref();
mkdirSync(shots, { recursive: true });

const { page, errors, close } = await launch({
    options: { locale: "en-US" },
    viewport: process.env.DESKTOP_VIEWPORT || "1360x860",
});
const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`) });

// What the wallboard shows, read from its DOM; with `expected`, false until the board shows at least that.
const probe = (expected) => {
    const value = (td) => (td.dataset.value !== undefined ? Number(td.dataset.value) : td.textContent.trim());
    const rows = (selector, key) => Object.fromEntries([...document.querySelectorAll(selector)].map((tr) => [
        tr.dataset[key], Object.fromEntries([...tr.querySelectorAll("td[data-field]")].map((td) => [td.dataset.field, value(td)])),
    ]));
    const agents = rows("#agents tr[data-agent]", "agent");
    for (const tr of document.querySelectorAll("#agents tr[data-agent]")) agents[tr.dataset.agent].online = tr.dataset.online === "true";
    const board = {
        connection: document.body.dataset.connection,
        banner: !document.querySelector("#banner").hidden,
        loads: Number(document.body.dataset.loads ?? 0),
        reconnects: Number(document.body.dataset.reconnects ?? 0),
        queues: rows("#queues tr[data-queue]", "queue"),
        campaigns: rows("#campaign-counts tr[data-campaign]", "campaign"),
        agents,
        references: Object.fromEntries([...document.querySelectorAll("#feed li[data-reference]")]
            .map((li) => [li.dataset.reference, li.dataset.type])),
    };
    if (expected === null) return board;
    const covers = (want, have) => (want !== null && typeof want === "object"
        ? have !== null && typeof have === "object" && Object.entries(want).every(([k, v]) => covers(v, have[k]))
        : want === have);
    return covers(expected, board) ? board : false;
};

let step = "start";
async function until(name, expected) {
    step = name;
    const handle = await page.waitForFunction(probe, expected, { polling: 100 });
    return handle.jsonValue();
}

async function run() {
    step = "open";
    await page.goto(`${base}/desktop/supervisor?transport=${transport}`);
    await page.waitForSelector("body[data-ready=true]");
    await shot("01-sign-in");

    step = "sign-in";
    await page.fill("#user", user);
    await page.fill("#password", password);
    await page.click("#sign-in-button");
    const start = await until("signed-in", {
        connection: "connected",
        queues: { Support: { waiting: 0, routedToday: 0 }, Express: { waiting: 0, elapsedToday: 0 } },
        campaigns: { Retention: { total: 0 }, Callbacks: { total: 0 } },
        agents: { agent1: { online: false, held: 0 } },
    });
    reached("signed-in", { board: start, transport: await page.textContent("#transport") });

    // Two callers wait in Support and one in Express; each is routed after a second (a callback record in
    // Callbacks) and the Express one elapses a couple of seconds later (nobody works Callbacks yet).
    const waiting = await until("waiting", { queues: { Support: { waiting: 2 } } });
    reached("waiting", { board: waiting });
    const routed = await until("routed", {
        queues: { Support: { waiting: 2, routedToday: 2, elapsedToday: 0 }, Express: { waiting: 0, routedToday: 1, elapsedToday: 1 } },
        campaigns: { Callbacks: { total: 3, callable: 2, held: 0, done: 1 } },
        references: { "wall-w1": "ContactCreated", "wall-w2": "ContactCreated", "wall-x1": "ContactCreated" },
    });
    reached("routed", { board: routed });

    const imported = await until("imported", {
        campaigns: { Retention: { total: 3, callable: 3, held: 0, done: 0 } },
        references: { "wall-i1": "ContactImported", "wall-i2": "ContactImported", "wall-i3": "ContactImported" },
    });
    reached("imported", { board: imported });

    const taken = await until("taken", {
        agents: { agent1: { online: true, sessions: 1, held: 1, preview: "Callbacks" } },
        campaigns: { Callbacks: { total: 3, callable: 1, held: 1, done: 1 } },
        queues: { Support: { waiting: 1 } },
        references: { "wall-g1": "RecordTaken" },
    });
    await shot("02-taken");
    reached("taken", { board: taken });

    const completed = await until("completed", {
        agents: { agent1: { online: true, held: 0 } },
        campaigns: { Callbacks: { total: 3, callable: 1, held: 0, done: 2 } },
        references: { "wall-c1": "RecordCompleted" },
    });
    await shot("03-completed");
    reached("completed", { board: completed });

    // The test drops the wallboard's session now: the banner shows (counted: over WebSocket the reconnect may
    // take less than a frame), then the page handshakes again and reads the state again (a contact imported
    // meanwhile is counted).
    await until("reconnecting", { reconnects: completed.reconnects + 1 });
    await shot("04-reconnecting");
    const recovered = await until("recovered", {
        connection: "connected",
        banner: false,
        campaigns: { Retention: { total: 4, callable: 4 } },
    });
    // The import made while the page had no session came back from the log, listed as missed.
    const missed = await page.waitForSelector('#feed li.event.missed[data-reference="wall-i4"]', { timeout: 10_000 })
        .then(() => true, () => false);
    reached("recovered", { board: { ...recovered, missedImport: missed }, before: completed.loads });

    const offline = await until("offline", { agents: { agent1: { online: false, sessions: 0, held: 0 } } });
    await shot("05-offline");
    reached("offline", { board: offline });
    if (errors.length) throw new Error(`uncaught errors in the page: ${errors.join("; ")}`);
}

let code = 0;
try {
    await run();
} catch (error) {
    if (!(error instanceof Stop)) {
        code = 1;
        let board = null;
        try {
            await shot("failure");
            board = await page.evaluate(probe, null);
        } catch { /* the page may be gone */ }
        emit("fail", { step, error: String(error.message ?? error), board });
    }
} finally {
    await close();
}
if (code === 0) emit("done");
process.exit(code);
