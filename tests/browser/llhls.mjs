// Plays a Ferrocast watch page with hls.js in low-latency mode in Debian's Chromium, samples the
// player every 500 ms and prints one JSON object:
// `node tests/browser/llhls.mjs URL SECONDS`.
//
// URL is a watch page (`/watch/NAME?engine=hlsjs`; the page turns hls.js's `lowLatencyMode` on
// unless `lowLatency=0`). SECONDS counts from the start of playback. Every sample carries the
// ingest-to-display latency the page computes: `Date.now() - hls.playingDate` (the
// EXT-X-PROGRAM-DATE-TIME of the frame at the playhead against the wall clock; server and browser
// share this machine's clock). `waiting` events after the first `playing` are stalls.
//
// Like play.mjs, it only reports: tests/llhls.rs and benches/latency.rs judge. It exits non-zero
// only when it cannot drive the browser at all. playwright-core never downloads a browser.
import { launch } from './chromium.mjs';

const [url, secondsArg] = process.argv.slice(2);
if (!url || !secondsArg) {
  console.error('usage: llhls.mjs URL SECONDS');
  process.exit(2);
}
const seconds = Number(secondsArg);
const startTimeoutMs = 30000;
const sampleMs = 500;

// Runs in the page before any of its scripts: media events do not bubble, but a capturing
// listener on the document sees them all, whenever the video element is created.
const recordEvents = () => {
  const log = (window.__llhls = { t0: performance.now(), events: [] });
  for (const type of ['playing', 'waiting', 'seeking', 'seeked', 'stalled', 'ratechange', 'error']) {
    document.addEventListener(
      type,
      (e) => {
        if (!(e.target instanceof HTMLMediaElement) || log.events.length >= 500) return;
        log.events.push({
          type,
          t: Math.round(performance.now() - log.t0),
          currentTime: e.target.currentTime,
          playbackRate: e.target.playbackRate,
        });
      },
      true,
    );
  }
};

const result = { url, seconds, samples: [] };
let browser;
try {
  browser = await launch('llhls');
  const { context } = browser;
  result.browser = context.browser()?.version() ?? null;
  const page = context.pages()[0] ?? (await context.newPage());
  await page.addInitScript(recordEvents);
  // LLHLS_HLS_CONFIG (JSON) is merged into the page's hls.js config, for experiments such as
  // {"maxLiveSyncPlaybackRate":1.5}; the page's own script is otherwise served unchanged.
  const extra = process.env.LLHLS_HLS_CONFIG;
  if (extra) {
    JSON.parse(extra);
    result.hlsConfig = extra;
    await page.route('**/assets/watch.js', async (route) => {
      const response = await route.fetch();
      const body = (await response.text()).replace('new Hls({', `new Hls({ ...${extra}, `);
      await route.fulfill({ response, body });
    });
  }
  const console_ = [];
  page.on('console', (m) => console_.length < 50 && m.type() !== 'log' && console_.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console_.length < 50 && console_.push(`pageerror: ${e.message}`));
  const errorResponses = [];
  const playlistRequests = { total: 0, blocking: 0, skip: 0 };
  page.on('request', (r) => {
    const u = r.url();
    if (!u.includes('.m3u8')) return;
    playlistRequests.total += 1;
    if (u.includes('_HLS_msn=')) playlistRequests.blocking += 1;
    if (u.includes('_HLS_skip=')) playlistRequests.skip += 1;
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && errorResponses.length < 20) errorResponses.push(`${r.status()} ${r.url()}`);
  });

  const sample = () =>
    page.evaluate(() => {
      const v = document.getElementById('video');
      const f = window.ferrocast || {};
      const hls = f.hls;
      const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
      const b = v.buffered;
      const date = hls && hls.playingDate ? hls.playingDate.getTime() : null;
      return {
        wall: Date.now(),
        engine: f.engine ?? null,
        errors: f.errors ? [...f.errors] : null,
        currentTime: v.currentTime,
        paused: v.paused,
        readyState: v.readyState,
        playbackRate: v.playbackRate,
        bufferAhead: b.length ? b.end(b.length - 1) - v.currentTime : 0,
        videoWidth: v.videoWidth,
        totalVideoFrames: q ? q.totalVideoFrames : null,
        droppedVideoFrames: q ? q.droppedVideoFrames : null,
        // Ingest-to-display: the PDT of the frame at the playhead against the wall clock.
        latency: date !== null ? (Date.now() - date) / 1000 : null,
        // hls.js's own view: distance to the live edge, and where it aims.
        hlsLatency: hls && Number.isFinite(hls.latency) ? hls.latency : null,
        targetLatency: hls && Number.isFinite(hls.targetLatency) ? hls.targetLatency : null,
        lowLatencyMode: hls ? hls.config.lowLatencyMode : null,
        level: hls && hls.currentLevel >= 0 ? hls.levels[hls.currentLevel]?.height ?? null : null,
        partTarget: hls && hls.levels && hls.currentLevel >= 0 ? hls.levels[hls.currentLevel]?.details?.partTarget ?? null : null,
        videoError: v.error ? { code: v.error.code, message: v.error.message } : null,
        t: Math.round(performance.now() - window.__llhls.t0),
      };
    });

  await page.goto(url, { waitUntil: 'load', timeout: 15000 });
  const t0 = Date.now();
  const playing = (s) => s.currentTime > 0 && !s.paused && s.readyState >= 3 && s.totalVideoFrames > 0;
  let first = await sample();
  while (!playing(first) && Date.now() - t0 < startTimeoutMs && !first.videoError) {
    await page.waitForTimeout(100);
    first = await sample();
  }
  result.startMs = Date.now() - t0;
  result.started = playing(first);
  result.start = first;
  if (result.started) {
    const until = Date.now() + seconds * 1000;
    let next = Date.now();
    while (Date.now() < until) {
      next += sampleMs;
      await page.waitForTimeout(Math.max(0, next - Date.now()));
      result.samples.push(await sample());
    }
  }
  const end = result.samples.at(-1) ?? first;
  result.end = end;
  result.advanced = end.currentTime - first.currentTime;
  result.wallSeconds = (end.wall - first.wall) / 1000;
  const log = await page.evaluate(() => window.__llhls);
  result.events = log.events;
  // The first `playing` is the start; a `waiting` after it is a stall.
  const firstPlaying = log.events.find((e) => e.type === 'playing');
  result.stalls = firstPlaying ? log.events.filter((e) => e.type === 'waiting' && e.t > firstPlaying.t) : [];
  const lat = result.samples.map((s) => s.latency).filter((x) => x !== null).sort((a, b) => a - b);
  const pick = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null);
  result.latency = { n: lat.length, min: lat[0] ?? null, median: pick(0.5), p95: pick(0.95), max: lat.at(-1) ?? null };
  result.playlistRequests = playlistRequests;
  result.console = console_;
  result.errorResponses = errorResponses;
} catch (e) {
  result.fatal = String(e && e.stack ? e.stack : e);
} finally {
  if (browser) await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(result.fatal ? 1 : 0);
