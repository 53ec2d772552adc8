// The watch page: plays /live/NAME/index.m3u8 with hls.js where MSE is available, natively
// otherwise. `?engine=native` or `?engine=hlsjs` forces one. Exposes `window.ferrocast` for tests.
(function () {
  const name = decodeURIComponent(location.pathname.split('/').pop());
  const params = new URLSearchParams(location.search);
  const src = '/live/' + encodeURIComponent(name) + '/index.m3u8';
  const video = document.getElementById('video');
  const $ = (id) => document.getElementById(id);
  $('name').textContent = name;

  // A random playback-session id, sent as a cookie with the HLS requests only (path /live/):
  // the server counts distinct sessions per stream (ferrocast_stream_viewers). It carries nothing
  // else. Kept in sessionStorage, so a reload of this tab is not a new viewer and two tabs are two.
  let session = null;
  try {
    session = sessionStorage.getItem('ferrocast_session');
  } catch (_) {}
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(session || '')) {
    session = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('');
    try {
      sessionStorage.setItem('ferrocast_session', session);
    } catch (_) {}
  }
  document.cookie = 'ferrocast_session=' + session + '; path=/live/; SameSite=Strict';

  const state = (window.ferrocast = { engine: null, errors: [], recovered: [], switches: [], gaps: 0, hls: null, src: src, session: session });
  const wanted = params.get('engine');
  const hlsjsOk = typeof Hls !== 'undefined' && Hls.isSupported();
  const nativeOk = video.canPlayType('application/vnd.apple.mpegurl') !== '';
  const engine = wanted === 'native' ? 'native' : wanted === 'hlsjs' ? 'hlsjs' : hlsjsOk ? 'hlsjs' : 'native';

  function fail(msg) {
    state.errors.push(msg);
    $('state').textContent = 'error: ' + msg;
  }

  if (engine === 'hlsjs') {
    if (!hlsjsOk) {
      fail('hls.js is unavailable in this browser');
      return;
    }
    // maxLiveSyncPlaybackRate lets hls.js play slightly faster until it is back at the LL-HLS
    // target distance; without it a player keeps whatever distance it started at (measured by
    // benches/latency: median 3.46 s without, 1.34 s with 1.5).
    // `?rung=NAME` starts on that rung; the player still adapts from there. Loading then starts
    // only once the page has chosen the start level: with hls.js's own start, the first level
    // was whichever the manifest and the media element's attachment, racing, let it pick. The
    // rung is held (a manual level) until playback starts, or the rung has a gap: on a slow
    // first load hls.js's bandwidth estimate otherwise moved down before one frame played.
    const rung = params.get('rung');
    const hls = new Hls({
      autoStartLoad: !rung,
      lowLatencyMode: params.get('lowLatency') !== '0',
      maxLiveSyncPlaybackRate: 1.5,
      backBufferLength: 30,
    });
    state.hls = hls;
    // A server that restarts, or a stream between publishers, answers nothing or 404 for a
    // while: keep trying (every 2 s, for up to 2 minutes) instead of giving up, and recover
    // from media errors once per 10 s, so a viewer never has to reload the page.
    let retryingSince = null;
    let retryTimer = null;
    let lastMediaRecovery = 0;
    hls.on(Hls.Events.ERROR, (_e, data) => {
      // A gap (a rung shed under overload): hls.js takes that time from another rung.
      if (data.details === Hls.ErrorDetails.FRAG_GAP) state.gaps++;
      if (!data.fatal) return;
      const what = `${data.type}: ${data.details}`;
      const now = Date.now();
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
        retryingSince = retryingSince ?? now;
        if (now - retryingSince < 120000) {
          $('state').textContent = 'reconnecting';
          // One retry at a time: a failed restart raises more than one fatal error.
          if (retryTimer === null) {
            if (state.recovered.length < 100) state.recovered.push(what);
            // Without a manifest there is nothing to resume: load it again.
            const manifest = [Hls.ErrorDetails.MANIFEST_LOAD_ERROR, Hls.ErrorDetails.MANIFEST_LOAD_TIMEOUT, Hls.ErrorDetails.MANIFEST_PARSING_ERROR].includes(data.details);
            retryTimer = setTimeout(() => {
              retryTimer = null;
              if (manifest) hls.loadSource(src);
              else hls.startLoad();
            }, 2000);
          }
          return;
        }
      } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR && now - lastMediaRecovery > 10000) {
        lastMediaRecovery = now;
        if (state.recovered.length < 100) state.recovered.push(what);
        hls.recoverMediaError();
        return;
      }
      fail(what);
    });
    hls.on(Hls.Events.FRAG_LOADED, () => (retryingSince = null));
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => {
      const level = hls.levels[data.level];
      if (level) $('rung').textContent = `${level.name || level.height + 'p'} (${level.width}×${level.height})`;
      if (level && state.switches.length < 100) state.switches.push(level.height);
    });
    if (rung) {
      let held = false;
      const release = () => {
        if (!held) return;
        held = false;
        hls.loadLevel = -1;
      };
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        const i = hls.levels.findIndex((l) => (l.url || []).some((u) => u.includes('/' + rung + '/') || u.startsWith(rung + '/')));
        if (i >= 0) {
          hls.startLevel = i;
          hls.loadLevel = i;
          held = true;
        }
        hls.startLoad();
      });
      video.addEventListener('playing', release);
      hls.on(Hls.Events.ERROR, (_e, data) => {
        if (data.details === Hls.ErrorDetails.FRAG_GAP || data.fatal) release();
      });
    }
    hls.loadSource(src);
    hls.attachMedia(video);
  } else {
    if (!nativeOk) fail('this browser has no native HLS');
    video.src = src;
  }
  state.engine = engine;
  $('engine').textContent = engine;

  video.addEventListener('error', () => {
    const e = video.error;
    fail('media error ' + (e ? e.code + ' ' + e.message : ''));
  });
  video.addEventListener('playing', () => ($('state').textContent = 'playing'));
  video.addEventListener('waiting', () => ($('state').textContent = 'buffering'));
  video.play().catch(() => {});

  setInterval(() => {
    const b = video.buffered;
    const ahead = b.length ? b.end(b.length - 1) - video.currentTime : 0;
    $('buffer').textContent = ahead.toFixed(1) + ' s';
    const hls = state.hls;
    if (hls && hls.currentLevel >= 0 && hls.levels[hls.currentLevel]) {
      $('bitrate').textContent = (hls.levels[hls.currentLevel].bitrate / 1000).toFixed(0) + ' kb/s';
    }
    if (hls && hls.playingDate) {
      const latency = (Date.now() - hls.playingDate.getTime()) / 1000;
      state.latency = latency;
      $('latency').textContent = latency.toFixed(2) + ' s';
    }
  }, 500);
})();
