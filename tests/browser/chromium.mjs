// Debian's Chromium (or $CHROMIUM) under playwright-core, the way every script here needs it:
// headless, a fresh throw-away profile, autoplay allowed, and flags that keep it off the network
// on a closed machine. playwright-core never downloads a browser.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

// Starts Chromium; `close()` stops it and removes its profile (never throws).
export async function launch(tag) {
  const profile = mkdtempSync(join(tmpdir(), `ferrocast-chromium-${tag}-`));
  const close = async (context) => {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--autoplay-policy=no-user-gesture-required',
        // The fresh profile goes in as launchPersistentContext's userDataDir (it refuses
        // --user-data-dir in args and passes that flag itself).
      ],
      viewport: { width: 1280, height: 1000 },
      timeout: 30000,
    });
  } catch (e) {
    await close(undefined);
    throw e;
  }
  return { context, close: () => close(context) };
}
