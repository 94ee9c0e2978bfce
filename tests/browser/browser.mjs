// Shared by the browser drivers: headless Chromium (Debian's) through playwright-core, JSON lines on stdout.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

export const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");

/** A fresh profile and one page; `args` are extra Chromium flags (`--lang=de-DE`), `options` context options. */
export async function launch({ args = [], options = {}, viewport = "1360x860" } = {}) {
    const [width, height] = viewport.split("x").map(Number);
    const profile = mkdtempSync(join(tmpdir(), "gateway-chromium-"));
    // The machine has no internet: without these flags Chromium tries its own services and stalls.
    const context = await chromium.launchPersistentContext(profile, {
        executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
        headless: true,
        args: [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", ...args,
        ],
        viewport: { width, height },
        ...options,
    });
    const page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(15_000);
    const errors = [];
    page.on("pageerror", (error) => { errors.push(String(error)); emit("pageerror", { error: String(error) }); });
    page.on("console", (message) => {
        if (message.type() === "error" || message.type() === "warning") emit("console", { type: message.type(), text: message.text() });
    });
    const close = async () => {
        await context.close().catch(() => {});
        rmSync(profile, { recursive: true, force: true });
    };
    return { context, page, errors, close };
}
