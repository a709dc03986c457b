// HLSPlayer plays a stream's LL-HLS output (/hls/{name}/index.m3u8) in a
// <video> element: with hls.js (which plays LL-HLS: parts, blocking
// playlist reloads) where the browser has Media Source Extensions, else with
// the browser's own HLS (Safari), else it says what is missing. hls.js is
// loaded from vendor/ only when needed; it is there when
// scripts/web-deps.sh ran before the build (see vendor/README.md), and
// nothing is ever fetched from elsewhere.
//
// It has the shape app.js expects of a session: state ('idle', 'starting',
// 'connecting', 'connected', 'reconnecting', 'stopped', 'error'),
// lastError, note, stats (null), events, 'change' events, start(), stop(),
// leave() and framesDecoded().

const HLSJS = './vendor/hls.min.mjs';
const RETRY_MS = 2000;
const EVENTS_KEPT = 50;

// loadHls imports hls.js once; it resolves to null where it is not there.
let hlsModule = null;
function loadHls() {
  if (!hlsModule) {
    hlsModule = import(HLSJS).then((m) => m.default || null, () => null);
  }
  return hlsModule;
}

// playlistURL is the stream's LL-HLS URL relative to the page (a reverse
// proxy's path prefix is kept), with the token as ?token=: players cannot
// send headers, and sluice's playlists pass it on to every URL they list.
export function playlistURL(name, token) {
  const u = new URL('hls/' + encodeURIComponent(name) + '/index.m3u8', location.href);
  if (token) u.searchParams.set('token', token);
  return u;
}

export class HLSPlayer extends EventTarget {
  constructor(video, { name, token }) {
    super();
    this.video = video;
    this.name = name;
    this.token = token || '';
    this.state = 'idle';
    this.lastError = '';
    this.note = '';
    this.stats = null;
    this.events = [];
    this.engine = ''; // 'hls.js' or 'native' once started
    this.hls = null;
    this.timer = 0;
    this.stopped = false;
    this.onPlaying = () => {
      if (!this.stopped && this.state !== 'connected') this.set({ state: 'connected', lastError: '' });
    };
    this.onNativeError = () => this.retry('the browser could not play the stream' +
      (video.error && video.error.message ? ': ' + video.error.message : ''));
  }

  set(fields) {
    if (fields.state && fields.state !== this.state) {
      this.events.push({ ms: Math.round(performance.now()), state: fields.state, why: fields.lastError || '' });
      if (this.events.length > EVENTS_KEPT) this.events.shift();
    }
    Object.assign(this, fields);
    this.dispatchEvent(new Event('change'));
  }

  framesDecoded() {
    const v = this.video;
    return typeof v.getVideoPlaybackQuality === 'function' ? v.getVideoPlaybackQuality().totalVideoFrames || 0 : 0;
  }

  async start() {
    this.stopped = false;
    this.set({ state: 'starting', lastError: '', note: '' });
    const Hls = await loadHls();
    if (this.stopped) return;
    const url = playlistURL(this.name, this.token).href;
    const v = this.video;
    v.srcObject = null;
    v.addEventListener('playing', this.onPlaying);
    if (Hls && Hls.isSupported()) {
      this.engine = 'hls.js';
      this.set({ state: 'connecting', note: 'LL-HLS with hls.js ' + (Hls.version || '') });
      this.attachHls(Hls, url);
    } else if (v.canPlayType('application/vnd.apple.mpegurl')) {
      this.engine = 'native';
      this.set({ state: 'connecting', note: "LL-HLS with the browser's own player" });
      v.addEventListener('error', this.onNativeError);
      v.src = url;
      v.play().catch(() => {});
    } else {
      this.set({
        state: 'error',
        lastError: Hls
          ? 'this browser has no Media Source Extensions for hls.js, and no HLS of its own'
          : 'hls.js is not installed in this sluice (run scripts/web-deps.sh before building), and this browser has no HLS of its own',
      });
    }
  }

  attachHls(Hls, url) {
    // No worker: the page's CSP allows no blob: scripts. lowLatencyMode
    // follows the parts and preload hints near the live edge.
    const hls = new Hls({ lowLatencyMode: true, enableWorker: false, backBufferLength: 30 });
    this.hls = hls;
    let recovered = false;
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal || this.hls !== hls) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !recovered) {
        recovered = true;
        hls.recoverMediaError();
        return;
      }
      const status = data.response && data.response.code;
      this.retry('HLS ' + (data.details || data.type) + (status ? ' (HTTP ' + status + ')' : ''), Hls, url);
    });
    hls.loadSource(url);
    hls.attachMedia(this.video);
    this.video.play().catch(() => {});
  }

  // retry shows why playback stopped and tries again in a moment: the
  // stream may not be published yet, or its publisher is reconnecting.
  retry(why, Hls, url) {
    if (this.stopped) return;
    this.detach();
    this.set({ state: 'reconnecting', lastError: why, note: 'retrying in ' + RETRY_MS / 1000 + ' s' });
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      this.set({ state: 'connecting', note: '' });
      if (Hls) {
        this.attachHls(Hls, url);
      } else {
        this.video.addEventListener('error', this.onNativeError);
        this.video.src = playlistURL(this.name, this.token).href;
        this.video.play().catch(() => {});
      }
    }, RETRY_MS);
  }

  detach() {
    clearTimeout(this.timer);
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
    this.video.removeEventListener('error', this.onNativeError);
    if (this.engine === 'native') {
      this.video.removeAttribute('src');
      this.video.load();
    }
  }

  async stop() {
    this.stopped = true;
    this.detach();
    this.video.removeEventListener('playing', this.onPlaying);
    this.set({ state: 'stopped', note: '' });
  }

  // leave is stop for pagehide: nothing to tell the server (HLS muxers stop
  // by themselves when nobody asks for their files).
  leave() {
    this.stopped = true;
    this.detach();
  }
}
