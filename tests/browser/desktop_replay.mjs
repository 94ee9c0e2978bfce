#!/usr/bin/env node
// The agent desktop resumes from its last replayId after the page was closed (test_desktop_replay.py).
//
//   node desktop_replay.mjs <base-url> <user> <password> <screenshot-dir> <websocket|long-polling>
//
// The page signs in, starts a preview session and gets two records, then is closed ("closed"); the browser
// profile (its localStorage) stays. The test then locks one record and lets a personal callback of the
// other fall due, and sends {"reopen": true} on stdin: a new page signs in again and must show the
// RecordCancel and the ScheduledCall it missed, marked as missed with their replayIds ("missed").
// Exit codes as desktop.mjs: 0 passed, 1 a step failed ("fail" says which), 2 the deadline passed.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

import { launch } from "./browser.mjs";

const [base, user, password, shots, transport] = process.argv.slice(2);
const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
setTimeout(() => { emit("deadline"); process.exit(2); }, 90_000).unref();

const commands = [];
let wake = null;
createInterface({ input: process.stdin }).on("line", (line) => {
    commands.push(JSON.parse(line));
    if (wake) wake();
});
async function command() {
    while (!commands.length) await new Promise((resolve) => { wake = resolve; });
    return commands.shift();
}

mkdirSync(shots, { recursive: true });
const { context, close } = await launch({ options: { locale: "en-US" } });
const pageErrors = [];
let page = null;
let step = "start";

async function open() {
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on("pageerror", (error) => { pageErrors.push(String(error)); emit("pageerror", { error: String(error) }); });
    await page.goto(`${base}/desktop/?transport=${transport}`);
    await page.waitForSelector("body[data-ready=true]");
    await page.fill("#user", user);
    await page.fill("#password", password);
    await page.click("#sign-in-button");
    await page.waitForSelector("#connection[data-state=connected]");
}

async function getRecord(except) {
    await page.click("li.campaign[data-campaign=Retention] .get-record");
    const selector = except === undefined ? "#record[data-status=active]"
        : `#record[data-status=active]:not([data-handle="${except}"])`;
    await page.waitForSelector(selector);
    return Number(await page.getAttribute("#record", "data-handle"));
}

async function run() {
    step = "sign-in";
    for (const existing of context.pages()) await existing.close();
    await open();
    step = "start-session";
    await page.click("li.campaign[data-campaign=Retention] .start-session");
    await page.waitForSelector("#log li.notification.outbound[data-type=PreviewSessionStarted][data-replay-id]");
    step = "get-records";
    const first = await getRecord();
    const second = await getRecord(first);
    const stored = await page.evaluate((key) => localStorage.getItem(key), `gateway.replay.${user}`);
    step = "close";
    await page.close();
    emit("closed", { records: [first, second], stored: JSON.parse(stored ?? "null") });

    step = "wait-reopen";
    await command();
    step = "reopen";
    await open();
    const missed = {};
    for (const type of ["RecordCancel", "ScheduledCall"]) {
        const item = await page.waitForSelector(`#log li.notification.outbound.missed[data-type=${type}]`);
        missed[type] = {
            handle: Number(await item.getAttribute("data-handle")),
            replayId: Number(await item.getAttribute("data-replay-id")),
            text: (await item.innerText()).replace(/\s+/g, " "),
        };
    }
    const live = await page.$$eval("#log li.notification.outbound:not(.missed)", (items) => items.length);
    await page.waitForSelector("#record[data-status=active] #record-banner.scheduled");
    await page.screenshot({ path: join(shots, "missed.png") });
    emit("missed", { missed, live, summary: await page.textContent("#missed") });
    if (pageErrors.length) throw new Error(`uncaught errors in the page: ${pageErrors.join("; ")}`);
}

let code = 0;
try {
    await run();
} catch (error) {
    code = 1;
    let log = [];
    try {
        await page.screenshot({ path: join(shots, "failure.png") });
        log = await page.$$eval("#log li", (items) => items.slice(0, 30).map((li) => li.innerText.replace(/\s+/g, " ")));
    } catch { /* the page may be gone */ }
    emit("fail", { step, error: String(error.message ?? error), log });
} finally {
    await close();
}
if (code === 0) emit("done");
process.exit(code);
