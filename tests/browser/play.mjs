// Plays a Ferrocast watch page in Debian's Chromium and prints one JSON object describing what
// happened: `node tests/browser/play.mjs URL ENGINE SECONDS [SCREENSHOT.png]`.
//
// ENGINE is what the page was asked for (`hlsjs` or `native`); the page's own choice is in the
// result. The script never decides pass or fail: it reports, and tests/playback_browser.rs judges.
// It exits non-zero only when it cannot drive the browser at all.
//
// With PLAY_AUDIO_ONLY=1 playback counts as started without decoded video frames (an audio-only
// stream has none). With PLAY_STARTED_FILE=PATH the first sample is also written to PATH (whole,
// by a rename) as soon as playback starts, so a test can act on a player known to be playing.
//
// playwright-core never downloads a browser: it drives /usr/bin/chromium (CHROMIUM overrides),
// with flags that keep Chromium off the network on a closed machine.
import { renameSync, writeFileSync } from 'node:fs';
import { launch } from './chromium.mjs';

const [url, engine, secondsArg, screenshot] = process.argv.slice(2);
if (!url || !engine || !secondsArg) {
  console.error('usage: play.mjs URL ENGINE SECONDS [SCREENSHOT.png]');
  process.exit(2);
}
const seconds = Number(secondsArg);
const startTimeoutMs = 20000;
const audioOnly = process.env.PLAY_AUDIO_ONLY === '1';

const result = { url, requested: engine, seconds };
let browser;
try {
  browser = await launch('play');
  const { context } = browser;
  result.browser = context.browser()?.version() ?? null;
  const page = context.pages()[0] ?? (await context.newPage());
  const console_ = [];
  page.on('console', (m) => console_.length < 50 && console_.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console_.length < 50 && console_.push(`pageerror: ${e.message}`));
  const requests = { failed: [], errorStatus: [] };
  page.on('requestfailed', (r) => requests.failed.length < 20 && requests.failed.push(`${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && requests.errorStatus.length < 20) requests.errorStatus.push(`${r.status()} ${r.url()}`);
  });

  const sample = () =>
    page.evaluate(() => {
      const v = document.getElementById('video');
      const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
      const f = window.ferrocast || {};
      const hls = f.hls;
      return {
        engine: f.engine ?? null,
        errors: f.errors ? [...f.errors] : null,
        recovered: f.recovered ? [...f.recovered] : null,
        latency: f.latency ?? null,
        currentTime: v.currentTime,
        paused: v.paused,
        readyState: v.readyState,
        videoWidth: v.videoWidth,
        videoHeight: v.videoHeight,
        totalVideoFrames: q ? q.totalVideoFrames : null,
        droppedVideoFrames: q ? q.droppedVideoFrames : null,
        webkitDecodedFrameCount: v.webkitDecodedFrameCount ?? null,
        videoError: v.error ? { code: v.error.code, message: v.error.message } : null,
        canPlayTypeHls: v.canPlayType('application/vnd.apple.mpegurl'),
        mediaSource: typeof MediaSource !== 'undefined',
        level: hls && hls.levels && hls.currentLevel >= 0 ? hls.levels[hls.currentLevel]?.height ?? null : null,
        switches: f.switches ? [...f.switches] : null,
        gaps: f.gaps ?? null,
        state: document.getElementById('state')?.textContent ?? null,
        buffered: Array.from({ length: v.buffered.length }, (_, i) => `${v.buffered.start(i).toFixed(2)}-${v.buffered.end(i).toFixed(2)}`),
        trail: f.trail ? [...f.trail] : null,
      };
    });

  await page.goto(url, { waitUntil: 'load', timeout: 15000 });
  const t0 = Date.now();
  // A trail of what hls.js did (the last 80 loads, playlist updates and errors), for a failing
  // test to show where playback stopped.
  await page.evaluate(() => {
    const f = window.ferrocast || {};
    const hls = f.hls;
    const E = typeof Hls !== 'undefined' ? Hls.Events : null;
    if (!hls || !E) return;
    const trail = (f.trail = []);
    const t0 = performance.now();
    const note = (what) => {
      trail.push(`${((performance.now() - t0) / 1000).toFixed(2)} ${what}`);
      if (trail.length > 80) trail.shift();
    };
    const frag = (d) => {
      const fr = d.frag || {};
      const p = d.part ? `.${d.part.index}` : '';
      return `l${fr.level} sn${fr.sn}${p} cc${fr.cc} @${(d.part || fr).start?.toFixed(2)}+${(d.part || fr).duration?.toFixed(2)}`;
    };
    hls.on(E.FRAG_LOADED, (_e, d) => note(`loaded ${frag(d)}`));
    hls.on(E.FRAG_BUFFERED, (_e, d) => note(`buffered ${frag(d)}`));
    hls.on(E.LEVEL_UPDATED, (_e, d) => {
      const l = d.details || {};
      note(`level ${d.level} sn${l.startSN}-${l.endSN} part${l.partList?.length ?? 0} cc${l.startCC}-${l.endCC} end@${l.edge?.toFixed?.(2)}`);
    });
    hls.on(E.ERROR, (_e, d) => note(`error ${d.details}${d.fatal ? ' fatal' : ''} ${d.response?.code ?? ''} ${d.frag ? frag(d) : ''}`));
  });
  // Playback has started once frames are decoded and the clock moves (hls.js seeks to the live
  // edge before the first frame, so a non-zero currentTime alone is not playback).
  const playing = (s) =>
    s.currentTime > 0 &&
    !s.paused &&
    s.readyState >= 3 &&
    (audioOnly || s.totalVideoFrames > 0 || s.webkitDecodedFrameCount > 0);
  let first = await sample();
  while (!playing(first) && Date.now() - t0 < startTimeoutMs && !first.videoError) {
    await page.waitForTimeout(250);
    first = await sample();
  }
  result.startMs = Date.now() - t0;
  result.start = { ...first, trail: undefined };
  if (process.env.PLAY_STARTED_FILE && playing(first)) {
    writeFileSync(process.env.PLAY_STARTED_FILE + '.tmp', JSON.stringify(first));
    renameSync(process.env.PLAY_STARTED_FILE + '.tmp', process.env.PLAY_STARTED_FILE);
  }
  await page.waitForTimeout(seconds * 1000);
  const end = await sample();
  result.end = end;
  result.advanced = end.currentTime - first.currentTime;
  result.wallSeconds = seconds;
  if (screenshot) {
    await page.screenshot({ path: screenshot });
    result.screenshot = screenshot;
  }
  result.console = console_;
  result.requestsFailed = requests.failed;
  result.errorResponses = requests.errorStatus;
} catch (e) {
  result.fatal = String(e && e.stack ? e.stack : e);
} finally {
  if (browser) await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(result.fatal ? 1 : 0);
