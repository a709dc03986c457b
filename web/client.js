// client.js: the WHIP/WHEP client the pages share (an ES module, no build
// step). A Publisher sends the camera, microphone or screen with WHIP
// (RFC 9725); a Player receives a stream with WHEP and keeps reconnecting,
// with back-off, when the stream ends or the network drops. Both report
// their state, last error and getStats() summary through 'change' events.
// Every request goes to this page's origin.

const GATHER_TIMEOUT_MS = 2000; // send the offer with what ICE has by then
const STATS_INTERVAL_MS = 1000;
const RETRY_BASE_MS = 500; // first retry after about this long, then doubling
const RETRY_MAX_MS = 8000;
const DISCONNECTED_GRACE_MS = 3000; // ICE 'disconnected' may recover by itself
const STALL_MS = 5000; // connected but no media for this long: reconnect
const CONNECT_TIMEOUT_MS = 15000; // the server gives up after 10 s by default
const EVENTS_KEPT = 50;

// Statuses that no retry can fix: the player stops and shows the reason.
const FATAL_STATUSES = new Set([400, 401, 403, 406, 413, 415]);

// HTTPError is a WHIP/WHEP request answered with an unexpected status.
export class HTTPError extends Error {
  constructor(status, reason, retryAfterMs) {
    super('HTTP ' + status + ': ' + reason);
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

export function authHeaders(token) {
  return token ? { Authorization: 'Bearer ' + token } : {};
}

async function httpError(resp) {
  let body = '';
  try {
    body = (await resp.text()).trim().slice(0, 500);
  } catch (_) {
    // The status alone still says what happened.
  }
  const retryAfter = Number(resp.headers.get('Retry-After'));
  return new HTTPError(resp.status, body || resp.statusText,
    Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 0);
}

// endpoint is the WHIP or WHEP URL of a stream, relative to the page so that
// a reverse proxy's path prefix is kept.
export function endpoint(kind, name) {
  return new URL(kind + '/' + encodeURIComponent(name), location.href);
}

// waitForGathering resolves when ICE gathering completes or after ms,
// whichever comes first: no trickle ICE, so the offer carries candidates.
function waitForGathering(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, ms);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// negotiate POSTs pc's offer to url and returns the session URL (or null)
// and the answer; the caller applies the answer once it knows that it still
// wants the session. stereo offers to receive stereo Opus (see
// withStereoOpus).
async function negotiate(pc, url, token, stereo = false) {
  const offer = await pc.createOffer();
  if (stereo) offer.sdp = withStereoOpus(offer.sdp);
  await pc.setLocalDescription(offer);
  await waitForGathering(pc, GATHER_TIMEOUT_MS);
  const resp = await fetch(url, {
    method: 'POST',
    headers: { ...authHeaders(token), 'Content-Type': 'application/sdp' },
    body: pc.localDescription.sdp,
  });
  if (resp.status !== 201) throw await httpError(resp);
  // RFC 9725 §4.2: Location names the session; resolve it against the URL
  // that answered (a redirect may have moved us).
  const loc = resp.headers.get('Location');
  const resource = loc ? new URL(loc, resp.url || url).href : null;
  return { resource, answer: await resp.text() };
}

// withStereoOpus adds stereo=1 to the Opus fmtp of an offer: it tells the
// server that this receiver wants stereo (RFC 7587 §6.1), and Chromium
// decodes Opus to two channels only when its own description says so (its
// default offer does not). A mono stream still plays, in both channels.
export function withStereoOpus(sdp) {
  const pts = [...sdp.matchAll(/^a=rtpmap:(\d+) opus\/48000/gim)].map((m) => m[1]);
  return sdp.replace(/^a=fmtp:(\d+) (.*)$/gm, (line, pt, params) =>
    pts.includes(pt) && !/(^|;)\s*stereo=/.test(params) ? 'a=fmtp:' + pt + ' ' + params + ';stereo=1' : line);
}

// release closes a session's PeerConnection and DELETEs its resource on the
// server (RFC 9725 §4.3). Calling it twice is harmless.
async function release(s, keepalive = false) {
  s.closed = true;
  if (s.pc) s.pc.close();
  const resource = s.resource;
  s.resource = null;
  if (!resource) return;
  const resp = await fetch(resource, { method: 'DELETE', headers: authHeaders(s.token), keepalive });
  if (!resp.ok && resp.status !== 404) throw await httpError(resp);
}

// AUX_CODECS ride along with whichever video codec is chosen.
const AUX_CODECS = new Set(['video/rtx', 'video/red', 'video/ulpfec', 'video/flexfec-03']);

// VIDEO_CODECS are the codecs a publisher may choose, by their page name.
export const VIDEO_CODECS = { h264: 'video/h264', vp8: 'video/vp8', vp9: 'video/vp9', av1: 'video/av1' };

// preferVideoCodec restricts a sending transceiver to one codec (H264:
// packetization-mode=1 Constrained Baseline first, other profiles as
// fallbacks). It throws if the browser cannot send that codec.
function preferVideoCodec(transceiver, codec) {
  const mime = VIDEO_CODECS[codec];
  if (!mime) throw new Error('unknown video codec ' + JSON.stringify(codec));
  const caps = window.RTCRtpSender && RTCRtpSender.getCapabilities
    ? RTCRtpSender.getCapabilities('video') : null;
  if (!caps || typeof transceiver.setCodecPreferences !== 'function') {
    return; // old browser: it sends its own choice
  }
  const rank = (c) => {
    const fmtp = c.sdpFmtpLine || '';
    if (!fmtp.includes('packetization-mode=1')) return 2;
    return fmtp.includes('profile-level-id=42e01f') ? 0 : 1;
  };
  const wanted = caps.codecs.filter((c) => c.mimeType.toLowerCase() === mime)
    .sort((a, b) => rank(a) - rank(b));
  if (wanted.length === 0) throw new Error('this browser cannot send ' + codec.toUpperCase());
  const aux = caps.codecs.filter((c) => AUX_CODECS.has(c.mimeType.toLowerCase()));
  transceiver.setCodecPreferences([...wanted, ...aux]);
}

// summarize turns a getStats() report into what the overlays show; prev is
// the previous summary of the same PeerConnection, for rates. Rates (fps,
// kbps) are deltas of the counters over the time between the reports'
// own timestamps, at least RATE_MIN_MS apart (a poll sooner than that keeps
// the last rates); null until two reports are that far apart.
const RATE_MIN_MS = 500;
export function summarize(report, prev) {
  const s = {
    at: 0, // the report's time, ms
    bytes: 0, // all RTP payload bytes in either direction, for the bitrate
    frames: 0, // video frames decoded (receiving) or encoded (sending), for the frame rate
    base: null, // the summary the rates were computed from, when not prev
    width: 0, height: 0, fps: null, kbps: null, rttMs: null, lossPct: null,
    videoCodec: '', audioCodec: '',
    framesDecoded: 0, framesEncoded: 0,
    audioPackets: 0, audioSamples: 0,
    packetsLost: 0, packetsReceived: 0,
  };
  const codecs = new Map();
  let pair = null;
  for (const r of report.values()) {
    if (r.type === 'codec') codecs.set(r.id, r.mimeType);
  }
  for (const r of report.values()) {
    switch (r.type) {
      case 'inbound-rtp':
      case 'outbound-rtp': {
        const inbound = r.type === 'inbound-rtp';
        s.at = Math.max(s.at, r.timestamp || 0);
        s.bytes += (inbound ? r.bytesReceived : r.bytesSent) || 0;
        if (inbound) {
          s.packetsLost += r.packetsLost || 0;
          s.packetsReceived += r.packetsReceived || 0;
        }
        const codec = codecs.get(r.codecId) || '';
        if (r.kind === 'video') {
          s.width = r.frameWidth || s.width;
          s.height = r.frameHeight || s.height;
          // Simulcast sends several layers: the frame rate is the fastest's.
          s.frames = Math.max(s.frames, (inbound ? r.framesDecoded : r.framesEncoded) || 0);
          s.framesDecoded += r.framesDecoded || 0;
          s.framesEncoded += r.framesEncoded || 0;
          s.videoCodec = codec || s.videoCodec;
        } else if (r.kind === 'audio') {
          s.audioPackets += (inbound ? r.packetsReceived : r.packetsSent) || 0;
          s.audioSamples += r.totalSamplesReceived || 0;
          s.audioCodec = codec || s.audioCodec;
        }
        break;
      }
      case 'remote-inbound-rtp':
        // A sender learns RTT and loss from the receiver's reports.
        if (r.roundTripTime !== undefined) s.rttMs = r.roundTripTime * 1000;
        if (r.fractionLost !== undefined) {
          s.lossPct = Math.max(s.lossPct || 0, r.fractionLost * 100);
        }
        break;
      case 'transport':
        if (r.selectedCandidatePairId) pair = report.get(r.selectedCandidatePairId);
        break;
      case 'candidate-pair':
        if (!pair && r.nominated && r.state === 'succeeded') pair = r;
        break;
    }
  }
  if (s.rttMs === null && pair && pair.currentRoundTripTime !== undefined) {
    s.rttMs = pair.currentRoundTripTime * 1000;
  }
  if (!s.at) s.at = performance.timeOrigin + performance.now();
  const base = prev ? prev.base || prev : null;
  if (base) {
    const dt = (s.at - base.at) / 1000;
    if (dt * 1000 >= RATE_MIN_MS) {
      s.kbps = Math.max(0, (s.bytes - base.bytes) * 8 / 1000 / dt);
      s.fps = Math.max(0, (s.frames - base.frames) / dt);
    } else {
      s.kbps = prev.kbps;
      s.fps = prev.fps;
      s.base = base;
    }
    const lost = s.packetsLost - prev.packetsLost;
    const got = s.packetsReceived - prev.packetsReceived;
    if (got + lost > 0) s.lossPct = Math.max(0, 100 * lost / (got + lost));
    else if (s.lossPct === null && s.packetsReceived > 0) s.lossPct = 0;
  }
  return s;
}

// formatStats is the one-line overlay text of a summary.
export function formatStats(s) {
  if (!s) return '';
  const parts = [];
  if (s.width && s.height) parts.push(s.width + '×' + s.height);
  if (s.fps !== null) parts.push(Math.round(s.fps) + ' fps');
  if (s.kbps !== null) parts.push(s.kbps >= 1000 ? (s.kbps / 1000).toFixed(2) + ' Mb/s' : Math.round(s.kbps) + ' kb/s');
  if (s.rttMs !== null) parts.push('RTT ' + Math.round(s.rttMs) + ' ms');
  if (s.lossPct !== null) parts.push('loss ' + s.lossPct.toFixed(1) + '%');
  const codecs = [s.videoCodec, s.audioCodec].filter(Boolean).map((m) => m.split('/')[1]);
  if (codecs.length) parts.push(codecs.join('+'));
  return parts.join(' · ');
}

// FrameCounter counts the video frames an element has presented, across
// changes of its srcObject (each of which restarts the element's own count).
class FrameCounter {
  constructor(video) {
    this.video = video;
    this.base = 0;
    this.last = 0;
  }

  count() {
    const v = this.video;
    if (typeof v.getVideoPlaybackQuality !== 'function') return 0;
    const n = v.getVideoPlaybackQuality().totalVideoFrames || 0;
    if (n < this.last) this.base += this.last; // the element started again
    this.last = n;
    return this.base + n;
  }

  attach(stream) {
    this.count();
    this.base += this.last;
    this.last = 0;
    this.video.srcObject = stream;
    this.video.play().catch(() => {});
  }
}

// Session is what Publisher and Player share: state, last error, a note for
// people, stats, and 'change' events when any of them changes.
class Session extends EventTarget {
  constructor(video, { name, token }) {
    super();
    this.video = video;
    this.name = name;
    this.token = token || '';
    this.state = 'idle';
    this.lastError = '';
    this.note = '';
    this.stats = null;
    this.frames = new FrameCounter(video);
    this.events = []; // the last EVENTS_KEPT state changes, for people and tests
  }

  framesDecoded() {
    return this.frames.count();
  }

  changed() {
    this.dispatchEvent(new Event('change'));
  }

  set(fields) {
    if (fields.state && fields.state !== this.state) {
      this.events.push({
        ms: Math.round(performance.now()),
        state: fields.state,
        why: fields.lastError || (fields.state === 'reconnecting' ? this.lastError : ''),
      });
      if (this.events.length > EVENTS_KEPT) this.events.shift();
    }
    Object.assign(this, fields);
    this.changed();
  }
}

// SIMULCAST_LAYERS are the encodings a simulcast publisher sends (RFC 8853):
// a quarter, half and full resolution layer, which the server ranks by bit
// rate and gives each viewer one of.
export const SIMULCAST_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 },
  { rid: 'f', maxBitrate: 1500000 },
];

// Publisher sends media from the camera, microphone or screen with WHIP.
export class Publisher extends Session {
  // options: name, token, source ('camera' | 'screen' | 'none'), audio
  // (boolean), codec ('h264' | 'vp8' | 'vp9' | 'av1'), bitrateKbps (0: the browser decides),
  // simulcast (boolean: three layers, SIMULCAST_LAYERS).
  constructor(video, options) {
    super(video, options);
    this.source = options.source || 'camera';
    this.audio = options.audio !== false;
    this.codec = options.codec || 'h264';
    this.bitrateKbps = options.bitrateKbps || 0;
    this.simulcast = !!options.simulcast;
    this.s = null; // {pc, media, resource, token, closed, statsTimer}
  }

  get media() {
    return this.s ? this.s.media : null;
  }

  // pc is the current RTCPeerConnection, or null.
  get pc() {
    return this.s ? this.s.pc : null;
  }

  async start() {
    await this.stop();
    const s = { pc: null, media: null, resource: null, token: this.token, closed: false, statsTimer: 0 };
    this.s = s;
    this.set({ state: 'starting', lastError: '', note: '', stats: null });
    try {
      s.media = await this.openMedia();
      if (s.closed) throw new Error('stopped');
      this.video.muted = true; // local preview: never play our own microphone
      this.frames.attach(s.media);
      for (const t of s.media.getTracks()) {
        // The user pressed the browser's own "Stop sharing".
        t.addEventListener('ended', () => {
          if (this.s === s) this.stop('the ' + t.kind + ' source ended');
        });
      }
      const pc = new RTCPeerConnection();
      s.pc = pc;
      pc.addEventListener('connectionstatechange', () => {
        if (this.s !== s) return;
        this.set({ state: pc.connectionState });
        if (pc.connectionState === 'failed') {
          this.set({ lastError: 'connection failed: no ICE/DTLS path to the server' });
        }
      });
      const streams = [s.media];
      for (const track of s.media.getTracks()) {
        const init = { direction: 'sendonly', streams };
        if (this.simulcast && track.kind === 'video') init.sendEncodings = SIMULCAST_LAYERS.map((l) => ({ ...l }));
        const tr = pc.addTransceiver(track, init);
        if (track.kind === 'video') preferVideoCodec(tr, this.codec);
      }
      const { resource, answer } = await negotiate(pc, endpoint('whip', this.name), this.token);
      s.resource = resource;
      if (s.closed) throw new Error('stopped');
      if (!resource) this.set({ note: 'The server sent no Location header: Stop cannot end the session on the server.' });
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      // The server ending the session (a takeover, shutdown) arrives as a
      // DTLS close_notify; ICE alone would take many seconds to notice.
      const dtls = pc.getSenders().map((x) => x.transport).find(Boolean);
      if (dtls) {
        dtls.addEventListener('statechange', () => {
          if (this.s === s && (dtls.state === 'closed' || dtls.state === 'failed')) {
            this.stop('the server ended the session (DTLS ' + dtls.state + ')');
          }
        });
      }
      if (this.bitrateKbps) await this.setBitrate(this.bitrateKbps);
      s.statsTimer = setInterval(() => this.poll(s), STATS_INTERVAL_MS);
    } catch (err) {
      const aborted = s.closed;
      await release(s).catch(() => {});
      this.stopTracks(s);
      if (aborted || this.s !== s) return;
      this.s = null;
      this.set({ state: 'error', lastError: err.message || String(err) });
    }
  }

  // stop ends the session; reason, if given, is shown as the last error.
  async stop(reason) {
    const s = this.s;
    if (!s) return;
    this.s = null;
    clearInterval(s.statsTimer);
    this.stopTracks(s);
    this.set({ state: 'stopped', lastError: reason || this.lastError });
    try {
      await release(s);
    } catch (err) {
      this.set({ lastError: 'stop: ' + (err.message || String(err)) });
    }
  }

  // leave is for pagehide: the DELETE must outlive the page.
  leave() {
    if (this.s) release(this.s, true).catch(() => {});
  }

  stopTracks(s) {
    if (!s.media) return;
    for (const t of s.media.getTracks()) t.stop();
    if (this.video.srcObject === s.media) this.video.srcObject = null;
  }

  async openMedia() {
    const md = navigator.mediaDevices;
    if (!md || !md.getUserMedia) {
      this.set({ note: 'The camera needs a secure context: open this page on localhost or over HTTPS.' });
      throw new Error('getUserMedia is not available here');
    }
    const tracks = [];
    try {
      if (this.source === 'screen') {
        if (!md.getDisplayMedia) throw new Error('this browser cannot share the screen');
        const screen = await md.getDisplayMedia({ video: true, audio: false });
        tracks.push(...screen.getVideoTracks());
        if (this.audio) tracks.push(...(await this.microphone(md)));
      } else if (this.source === 'camera') {
        tracks.push(...(await this.camera(md)));
      } else if (this.audio) {
        tracks.push(...(await this.microphone(md)));
      }
    } catch (err) {
      for (const t of tracks) t.stop();
      if (err.name === 'NotAllowedError' || err.name === 'SecurityError') {
        this.set({ note: 'Access was denied. Allow the camera, microphone or screen in the browser\'s site settings and press Start again.' });
      }
      throw new Error(this.source + ': ' + (err.name ? err.name + ': ' : '') + err.message);
    }
    if (tracks.length === 0) throw new Error('nothing to publish: choose a video source or the microphone');
    return new MediaStream(tracks);
  }

  async camera(md) {
    // Simulcast layers need a picture large enough to scale down twice.
    const video = this.simulcast ? { width: 1280, height: 720 } : true;
    try {
      return (await md.getUserMedia({ video, audio: this.audio })).getTracks();
    } catch (err) {
      if (!this.audio || err.name === 'NotAllowedError' || err.name === 'SecurityError') throw err;
      // A device is missing or busy: publish whichever one works.
      for (const only of ['video', 'audio']) {
        try {
          const media = await md.getUserMedia({ [only]: true });
          this.set({ note: 'Publishing ' + only + ' only (' + err.name + ': ' + err.message + ').' });
          return media.getTracks();
        } catch (_) {
          // Try the next kind.
        }
      }
      throw err;
    }
  }

  async microphone(md) {
    return (await md.getUserMedia({ audio: true })).getAudioTracks();
  }

  videoSender() {
    if (!this.s || !this.s.pc) return null;
    return this.s.pc.getSenders().find((x) => x.track && x.track.kind === 'video') || null;
  }

  // setBitrate caps the video encoder (RTCRtpSender.setParameters
  // maxBitrate); 0 lets the browser decide. It works while publishing.
  async setBitrate(kbps) {
    this.bitrateKbps = kbps;
    const sender = this.videoSender();
    if (!sender) return;
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length === 0) params.encodings = [{}];
    for (const enc of params.encodings) {
      if (kbps > 0) enc.maxBitrate = kbps * 1000;
      else delete enc.maxBitrate;
    }
    await sender.setParameters(params);
  }

  // senderParameters is the video sender's current encodings (test hook).
  senderParameters() {
    const sender = this.videoSender();
    return sender ? sender.getParameters().encodings : [];
  }

  // trackSettings is the published video track's settings, e.g. its size.
  trackSettings() {
    const t = this.s && this.s.media ? this.s.media.getVideoTracks()[0] : null;
    return t ? t.getSettings() : null;
  }

  async poll(s) {
    if (this.s !== s || !s.pc) return;
    let report;
    try {
      report = await s.pc.getStats();
    } catch (_) {
      return;
    }
    if (this.s !== s) return;
    this.set({ stats: summarize(report, this.stats) });
  }
}

// Player receives a stream with WHEP and keeps it playing: when the stream
// ends (the server closes viewers when the publisher leaves, and answers 404
// until someone publishes again) or the network drops, it reconnects with
// exponential back-off and jitter, without reloading the page.
//
// state: 'idle' | 'connecting' | 'connected' | 'reconnecting' (waiting to
// retry, or retrying) | 'stopped' | 'error' (a failure no retry can fix).
export class Player extends Session {
  // options: name, token, layer (a simulcast layer to pin: low, mid, high
  // or a RID; '' lets the server choose by bandwidth).
  constructor(video, options) {
    super(video, options);
    this.layer = options.layer || '';
    this.ttffMs = null; // from start() to the first frame shown
    this.recoveryMs = null; // from the last loss to the next first frame
    this.reconnects = 0; // successful connections after the first
    this.run = null;
  }

  // pc is the current attempt's RTCPeerConnection, or null.
  get pc() {
    return this.run && this.run.attempt ? this.run.attempt.pc : null;
  }

  start() {
    this.halt();
    const run = {
      startedAt: performance.now(),
      lostAt: 0, // when the last connection was lost
      failures: 0, // consecutive, for the back-off
      attempt: null,
      connectedOnce: false,
      timer: 0,
      statsTimer: 0,
    };
    this.run = run;
    this.ttffMs = null;
    this.set({ state: 'connecting', lastError: '', note: '', stats: null });
    run.statsTimer = setInterval(() => this.poll(run), STATS_INTERVAL_MS);
    this.connect(run);
  }

  async stop() {
    const a = this.halt();
    this.set({ state: 'stopped', note: '' });
    if (a) {
      try {
        await release(a);
      } catch (err) {
        this.set({ lastError: 'stop: ' + (err.message || String(err)) });
      }
    }
  }

  leave() {
    const a = this.halt();
    if (a) release(a, true).catch(() => {});
  }

  // halt ends the run's timers and returns its attempt for release.
  halt() {
    const run = this.run;
    if (!run) return null;
    this.run = null;
    clearTimeout(run.timer);
    clearInterval(run.statsTimer);
    const a = run.attempt;
    run.attempt = null;
    return a;
  }

  async connect(run) {
    if (this.run !== run) return;
    const pc = new RTCPeerConnection();
    const a = {
      pc, resource: null, token: this.token, closed: false,
      createdAt: performance.now(), connectedAt: 0, disconnectedAt: 0,
      lastBytes: 0, lastProgress: 0, prevStats: null,
    };
    run.attempt = a;
    const vt = pc.addTransceiver('video', { direction: 'recvonly' });
    const at = pc.addTransceiver('audio', { direction: 'recvonly' });
    // The receiver tracks exist from the start and unmute when media
    // flows, so the element can be wired up before negotiation.
    this.frames.attach(new MediaStream([vt.receiver.track, at.receiver.track]));
    this.watchFirstFrame(run, a);
    pc.addEventListener('connectionstatechange', () => this.onConnectionState(run, a));
    try {
      const url = endpoint('whep', this.name);
      if (this.layer) url.searchParams.set('layer', this.layer);
      const { resource, answer } = await negotiate(pc, url, this.token, true);
      a.resource = resource;
      if (run.attempt !== a) {
        release(a).catch(() => {});
        return;
      }
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      // The server closing the session arrives as a DTLS close_notify.
      const dtls = vt.receiver.transport || at.receiver.transport;
      if (dtls) {
        dtls.addEventListener('statechange', () => {
          if (dtls.state === 'closed' || dtls.state === 'failed') {
            this.lost(run, a, new Error('the server ended the session (DTLS ' + dtls.state + ')'));
          }
        });
      }
    } catch (err) {
      this.lost(run, a, err);
    }
  }

  onConnectionState(run, a) {
    if (run.attempt !== a) return;
    const st = a.pc.connectionState;
    switch (st) {
      case 'connected':
        a.connectedAt = a.lastProgress = performance.now();
        a.disconnectedAt = 0;
        if (run.connectedOnce) this.reconnects++;
        run.connectedOnce = true;
        this.set({ state: 'connected', note: '' });
        break;
      case 'disconnected':
        a.disconnectedAt = performance.now(); // poll() gives it a grace period
        break;
      case 'failed':
      case 'closed':
        this.lost(run, a, new Error('connection ' + st));
        break;
      default:
        if (this.state !== 'reconnecting') this.set({ state: 'connecting' });
    }
  }

  // lost tears down attempt a and schedules the next one, unless the error
  // is one that retrying cannot fix.
  lost(run, a, err) {
    if (this.run !== run || run.attempt !== a) return;
    run.attempt = null;
    release(a).catch(() => {});
    const message = err.message || String(err);
    if (err instanceof HTTPError && FATAL_STATUSES.has(err.status)) {
      this.halt();
      this.set({ state: 'error', lastError: message, note: '' });
      return;
    }
    if (a.connectedAt) run.lostAt = performance.now();
    const backoff = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** run.failures);
    run.failures++;
    const delay = Math.max(err.retryAfterMs || 0, backoff * (0.8 + 0.4 * Math.random()));
    const why = err instanceof HTTPError && err.status === 404
      ? 'Stream "' + this.name + '" is not live'
      : 'Lost the stream (' + message + ')';
    this.set({
      state: 'reconnecting',
      lastError: message,
      note: why + '; retrying in ' + (delay / 1000).toFixed(1) + ' s.',
    });
    run.timer = setTimeout(() => this.connect(run), delay);
  }

  watchFirstFrame(run, a) {
    const v = this.video;
    const seen = () => {
      if (run.attempt !== a) return;
      const now = performance.now();
      if (this.ttffMs === null) this.ttffMs = now - run.startedAt;
      if (run.lostAt) this.recoveryMs = now - run.lostAt;
      this.dispatchEvent(new Event('firstframe'));
      this.changed();
    };
    if (typeof v.requestVideoFrameCallback === 'function') v.requestVideoFrameCallback(seen);
    else v.addEventListener('loadeddata', seen, { once: true });
  }

  // poll updates the stats and is the watchdog: a connection that stays
  // disconnected, never connects, or carries no media is replaced.
  async poll(run) {
    const a = run.attempt;
    if (!a) return;
    this.framesDecoded(); // keeps the frame count across reconnects
    const now = performance.now();
    if (a.disconnectedAt && now - a.disconnectedAt > DISCONNECTED_GRACE_MS) {
      this.lost(run, a, new Error('connection disconnected for ' + DISCONNECTED_GRACE_MS / 1000 + ' s'));
      return;
    }
    if (!a.connectedAt) {
      if (a.resource && now - a.createdAt > CONNECT_TIMEOUT_MS) {
        this.lost(run, a, new Error('not connected after ' + CONNECT_TIMEOUT_MS / 1000 + ' s'));
      }
      return;
    }
    let report;
    try {
      report = await a.pc.getStats();
    } catch (_) {
      return;
    }
    if (run.attempt !== a) return;
    const s = summarize(report, a.prevStats);
    a.prevStats = s;
    if (s.bytes > a.lastBytes) {
      a.lastBytes = s.bytes;
      a.lastProgress = now;
      run.failures = 0; // media flows: the next loss retries quickly again
    } else if (now - a.lastProgress > STALL_MS) {
      this.lost(run, a, new Error('no media for ' + STALL_MS / 1000 + ' s'));
      return;
    }
    this.set({ stats: s });
  }
}
