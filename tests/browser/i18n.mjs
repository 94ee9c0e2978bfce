#!/usr/bin/env node
// Both pages in Chromium started with --lang=de-DE: German by default, English after the switch, and the
// choice remembered (localStorage) across reloads and pages. Prints one JSON line per page state.
//
//   node i18n.mjs <base-url> <agent> <agent-password> <supervisor> <supervisor-password> <screenshot-dir>

import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { emit, launch } from "./browser.mjs";

const [base, agent, agentPassword, supervisor, supervisorPassword, shots] = process.argv.slice(2);
setTimeout(() => { emit("deadline"); process.exit(2); }, 90_000).unref();
mkdirSync(shots, { recursive: true });
// playwright-core sets navigator.language itself (en-US unless told): --lang alone would be overridden.
const { page, errors, close } = await launch({ args: ["--lang=de-DE"], options: { locale: "de-DE" } });
const text = (selector) => page.textContent(selector).then((s) => s.trim());

// What a page shows of its language: its lang, the pressed switch button and a few labels.
async function labels(selectors) {
    const out = {
        lang: await page.getAttribute("html", "lang"),
        pressed: await page.getAttribute(".lang-switch button[aria-pressed=true]", "data-lang"),
        navigator: await page.evaluate(() => navigator.language),
    };
    for (const [name, selector] of Object.entries(selectors)) out[name] = await text(selector);
    return out;
}

const DESKTOP = {
    heading: "header h1", signIn: "#sign-in-panel h2", user: "#sign-in label", connection: "#conn-state",
};
const DESKTOP_IN = { start: "li.campaign[data-campaign=Retention] .start-session", connection: "#conn-state", record: "#record-panel h2" };
const BOARD = { heading: "header h1", queue: "#queues thead th", waiting: "#queues thead th:nth-child(2)", agents: "#agents-panel h2" };
const BOARD_IN = { state: "#agents tr[data-agent=agent2] [data-field=state]", connection: "#conn-state" };

let code = 0;
try {
    await page.goto(`${base}/desktop/`);
    await page.waitForSelector("body[data-ready=true]");
    emit("desktop", await labels(DESKTOP));
    await page.fill("#user", agent);
    await page.fill("#password", agentPassword);
    await page.click("#sign-in-button");
    await page.waitForSelector("#connection[data-state=connected]");
    await page.waitForSelector("li.campaign[data-campaign=Retention]");
    await page.screenshot({ path: join(shots, "desktop-de.png") });
    emit("desktop-signed-in", await labels(DESKTOP_IN));
    await page.click(".lang-switch button[data-lang=en]");
    emit("desktop-english", await labels(DESKTOP_IN));

    await page.goto(`${base}/desktop/supervisor`);
    await page.waitForSelector("body[data-ready=true]");
    emit("board-remembered", await labels(BOARD));   // English: chosen on the desktop, same storage
    await page.click(".lang-switch button[data-lang=de]");
    await page.fill("#user", supervisor);
    await page.fill("#password", supervisorPassword);
    await page.click("#sign-in-button");
    await page.waitForSelector("body[data-connection=connected]");
    await page.waitForSelector("#agents tr[data-agent=agent2]");
    await page.screenshot({ path: join(shots, "supervisor-de.png") });
    emit("board", { ...(await labels(BOARD)), ...(await labels(BOARD_IN)) });
    await page.click(".lang-switch button[data-lang=en]");
    emit("board-english", { ...(await labels(BOARD)), ...(await labels(BOARD_IN)) });
    await page.reload();
    await page.waitForSelector("body[data-ready=true]");
    emit("board-reloaded", await labels(BOARD));
    if (errors.length) throw new Error(`uncaught errors in the page: ${errors.join("; ")}`);
} catch (error) {
    code = 1;
    await page.screenshot({ path: join(shots, "failure.png") }).catch(() => {});
    emit("fail", { error: String(error.message ?? error) });
} finally {
    await close();
}
if (code === 0) emit("done");
process.exit(code);
