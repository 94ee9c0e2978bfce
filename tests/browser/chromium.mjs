// Headless Debian Chromium through playwright-core, as every page driver here launches it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

// A persistent context in a fresh profile folder (its localStorage lives as long as the context);
// close() ends the browser and removes the folder. `options` go to playwright (e.g. locale).
export async function launch(prefix, viewport = { width: 1360, height: 860 }, options = {}) {
    const profile = mkdtempSync(join(tmpdir(), prefix));
    // The machine has no internet: without these flags Chromium tries its own services and stalls.
    const context = await chromium.launchPersistentContext(profile, {
        executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
        headless: true,
        args: [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ],
        viewport,
        ...options,
    });
    const close = async () => {
        await context.close().catch(() => {});
        rmSync(profile, { recursive: true, force: true });
    };
    return { context, close };
}
