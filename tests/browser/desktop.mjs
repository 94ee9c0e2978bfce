#!/usr/bin/env node
// Drives the agent desktop page (/desktop/) in headless Chromium with playwright-core, as an agent would,
// and prints one JSON line per step reached. The pytest side (test_desktop.py) acts on some of them:
//   "rejected"      -> it drops the agent's CometD session on the server (the page must reconnect by itself)
//   "record-again"  -> it locks that record through the jtel API (the page must show the cancel)
//
//   node desktop.mjs <base-url> <user> <password> <screenshot-dir> <websocket|long-polling> [last-step]
//
// With a last step (e.g. "record") the script stops there with success: against `make run` with a contact
// imported, `... websocket record` takes the README's screenshot (02-record.png -> docs/desktop.png).
//
// Environment: CHROMIUM_PATH (default /usr/bin/chromium), DESKTOP_VIEWPORT (default 1360x860). Exit codes: 0 every step passed, 1 a step failed
// (a "fail" line says which, and failure.png shows the page), 2 the overall deadline passed.

import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { launch } from "./browser.mjs";

const [base, user, password, shots, transport, lastStep] = process.argv.slice(2);
const [width, height] = (process.env.DESKTOP_VIEWPORT || "1360x860").split("x").map(Number);
const STEP_MS = 10_000;
const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
class Stop extends Error {}
// A step reached: tell the test, and stop here if it is the last one asked for.
const reached = (event, fields = {}) => {
    emit(event, fields);
    if (event === lastStep) throw new Stop();
};
setTimeout(() => { emit("deadline"); process.exit(2); }, 90_000).unref();

mkdirSync(shots, { recursive: true });
// The steps read English banners (test_i18n.py checks German).
const { context, close } = await launch({ options: { locale: "en-US" }, viewport: `${width}x${height}` });
const page = context.pages()[0] ?? await context.newPage();
page.setDefaultTimeout(STEP_MS);
const pageErrors = [];
page.on("pageerror", (error) => { pageErrors.push(String(error)); emit("pageerror", { error: String(error) }); });
page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") emit("console", { type: message.type(), text: message.text() });
});

let step = "start";
const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`) });

// The referenceId the page sent with its latest `operation` (once the synchronous reply said statusCode 0).
async function requestReference(operation) {
    const request = await page.waitForSelector(`#log li.request.ok[data-operation=${operation}]`);
    return request.getAttribute("data-reference");
}

// The log's entries, newest first, as the page shows them (for failure reports).
const logLines = () => page.$$eval("#log li", (items) => items.slice(0, 40).map((li) => li.innerText.replace(/\s+/g, " ")));

async function run() {
    step = "open";
    await page.goto(`${base}/desktop/?transport=${transport}`);
    await page.waitForSelector("body[data-ready=true]");
    await shot("01-sign-in");

    step = "sign-in";
    await page.fill("#user", user);
    await page.fill("#password", password);
    await page.click("#sign-in-button");
    await page.waitForSelector("#connection[data-state=connected]");
    reached("connected", { transport: await page.textContent("#transport") });

    step = "campaigns";
    await page.waitForSelector("li.campaign");
    reached("campaigns", { names: await page.$$eval("li.campaign", (items) => items.map((li) => li.dataset.campaign)) });

    step = "start-session";
    await page.click("li.campaign[data-campaign=Retention] .start-session");
    await page.waitForSelector("#log li.notification.outbound[data-type=PreviewSessionStarted]");
    await page.waitForSelector("li.campaign.started[data-campaign=Retention] .get-record:enabled");

    step = "get-record";
    await page.click("li.campaign[data-campaign=Retention] .get-record");
    await page.waitForSelector("#record[data-status=active]");
    const fields = await page.$$eval("#record-fields tr", (rows) =>
        Object.fromEntries(rows.map((tr) => [tr.dataset.field, tr.querySelector("td").textContent])));
    const handle = Number(await page.getAttribute("#record", "data-handle"));
    await shot("02-record");
    reached("record", { handle, fields, title: await page.textContent("#record-title") });

    step = "reject";
    await page.click("#reject");
    const referenceId = await requestReference("RejectRecord");
    await page.waitForSelector(
        `#log li.notification.outbound[data-type=RecordRejectAcknowledge][data-reference="${referenceId}"]`);
    await page.waitForSelector("#record[data-status=done] #record-banner.done");
    await shot("03-rejected");
    reached("rejected", { handle, referenceId, banner: await page.textContent("#record-banner") });

    step = "reconnect";
    // The test drops this agent's session on the server now: the page must notice and handshake again.
    await page.waitForSelector("#log li.connection[data-state=reconnecting]");
    await page.waitForSelector("#connection[data-state=connected]");
    reached("reconnected", { transport: await page.textContent("#transport") });

    step = "get-record-again";
    await page.click("li.campaign[data-campaign=Retention] .get-record");
    await page.waitForSelector("#record[data-status=active]");
    const again = Number(await page.getAttribute("#record", "data-handle"));
    await shot("04-record-again");
    reached("record-again", { handle: again });

    step = "cancel";
    // The test locks the record through the jtel API now: RecordCancel must show on the page.
    await page.waitForSelector(`#log li.notification.outbound[data-type=RecordCancel][data-handle="${again}"]`);
    await page.waitForSelector(`#record[data-status=cancelled][data-handle="${again}"] #record-banner.cancelled`);
    const disabled = await page.$$eval("#actions button", (buttons) => buttons.every((b) => b.disabled));
    if (!disabled) throw new Error("the action buttons of a cancelled record are still enabled");
    await shot("05-cancelled");
    reached("cancelled", { handle: again, banner: await page.textContent("#record-banner") });

    step = "scheduled-call";
    // A personal callback already due: the acknowledgement, then ScheduledCall shows the record again.
    await page.click("li.campaign[data-campaign=Retention] .get-record");
    await page.waitForSelector(`#record[data-status=active]:not([data-handle="${again}"])`);
    const third = Number(await page.getAttribute("#record", "data-handle"));
    const past = await page.evaluate(() => {
        const then = new Date(Date.now() - 2 * 60 * 1000);
        return new Date(then.getTime() - then.getTimezoneOffset() * 60 * 1000).toISOString().slice(0, 16);
    });
    await page.fill("#reschedule-at", past);
    await page.selectOption("#callback-type", "Personal");
    await page.click("#reschedule");
    const rescheduled = await requestReference("RescheduleRecord");
    await page.waitForSelector(`#log li.notification.outbound[data-type=ScheduledRecordRescheduleAcknowledge][data-reference="${rescheduled}"]`);
    await page.waitForSelector(`#log li.notification.outbound[data-type=ScheduledCall][data-handle="${third}"]`);
    await page.waitForSelector(`#record[data-status=active][data-handle="${third}"] #record-banner.scheduled`);
    await page.waitForSelector("#complete:enabled");
    await shot("06-scheduled-call");
    reached("scheduled-call", { handle: third, referenceId: rescheduled, banner: await page.textContent("#record-banner") });

    step = "complete";
    await page.selectOption("#call-result", "Busy");
    await page.click("#complete");
    const completed = await requestReference("CompleteRecord");
    await page.waitForSelector(`#log li.notification.outbound[data-type=RecordProcessedAcknowledge][data-reference="${completed}"]`);
    await page.waitForSelector(`#record[data-status=done][data-handle="${third}"] #record-banner.done`);
    await shot("07-completed");
    reached("completed", { handle: third, referenceId: completed });

    if (pageErrors.length) throw new Error(`uncaught errors in the page: ${pageErrors.join("; ")}`);
}

let code = 0;
try {
    await run();
} catch (error) {
    if (!(error instanceof Stop)) {
        code = 1;
        let log = [];
        try {
            await shot("failure");
            log = await logLines();
        } catch { /* the page may be gone */ }
        emit("fail", { step, error: String(error.message ?? error), log });
    }
} finally {
    await close();
}
if (code === 0) emit("done");
process.exit(code);
