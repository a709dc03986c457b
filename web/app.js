// sluice page: publish the camera, microphone or screen with WHIP (RFC 9725)
// or play a stream with WHEP or LL-HLS. Plain ES module, no build step; the
// clients live in client.js and hlsplayer.js.
//
// Query parameters: stream=NAME, mode=publish|play|hls, token=TOKEN (sent as
// Bearer; for HLS as ?token=), autostart=1, and for publishing
// source=camera|screen|none, audio=0|1, codec=h264|vp8|vp9|av1, bitrate=KBPS,
// simulcast=1 (three layers); for play, layer=low|mid|high|RID (pin a
// simulcast layer).
//
// Test hooks on window.sluice:
//   state           'idle' | 'starting' | 'connecting' | 'connected' |
//                   'reconnecting' (player) | 'disconnected' | 'failed' |
//                   'stopped' | 'error'
//   lastError       '' or the last error shown, e.g. 'HTTP 404: no such stream'
//   framesDecoded() video frames the <video> element has shown so far,
//                   counted across reconnects
//   start(), stop() the same as the buttons
//   stats           the last getStats() summary (client.js summarize)
//   ttffMs          player: ms from start() to the first frame shown
//   recoveryMs      player: ms from the last loss to the next first frame
//   reconnects      player: connections made after the first
//   events          the last state changes: [{ms, state, why}]
//   trackSettings() publisher: the video track's settings
//   senderParameters() publisher: the video sender's encodings
//   setBitrate(kbps) publisher: as the bitrate field
//   videoSize()     {width, height} of what the <video> element shows
//   rawStats(type)  the current PeerConnection's getStats() entries of that
//                   type ('inbound-rtp', ...), or all of them
//   hls()           LL-HLS player: {engine: 'hls.js'|'native'|'', currentTime,
//                   videoWidth, videoHeight, buffered (s ahead), latency
//                   (hls.js's estimate, s)}

import { Player, Publisher, VIDEO_CODECS, formatStats } from './client.js';
import { HLSPlayer } from './hlsplayer.js';

const $ = (id) => document.getElementById(id);
const form = $('form');
const startButton = $('start');
const stopButton = $('stop');
const unmuteButton = $('unmute');
const publishOptions = $('publish-options');
const bitrateInput = $('bitrate');
const stateOut = $('state');
const errorOut = $('error');
const noteOut = $('note');
const statsOut = $('stats');
const video = $('video');

let session = null; // the Publisher or Player started last

function mode() {
  const m = form.elements.mode.value;
  return m === 'play' || m === 'hls' ? m : 'publish';
}

function render() {
  const s = session;
  const state = s ? s.state : 'idle';
  stateOut.textContent = state;
  // While a player retries, the note says why; red is for what needs a person.
  errorOut.textContent = s && state !== 'reconnecting' ? s.lastError : '';
  noteOut.textContent = s ? s.note : '';
  const running = !!s && !['idle', 'stopped', 'error'].includes(state);
  startButton.disabled = running;
  stopButton.disabled = !running;
  for (const el of form.querySelectorAll('input, select')) {
    el.disabled = running && el !== bitrateInput;
  }
  unmuteButton.hidden = !(running && (s instanceof Player || s instanceof HLSPlayer));
  statsOut.hidden = !running || !s.stats;
  if (running && s.stats) {
    let text = formatStats(s.stats);
    if (s instanceof Player && s.ttffMs !== null) text += ' · first frame ' + Math.round(s.ttffMs) + ' ms';
    statsOut.textContent = text;
  }
}

function showOptions() {
  publishOptions.hidden = mode() !== 'publish';
}

async function start() {
  if (session) await session.stop();
  const name = form.elements.stream.value.trim() || 'live';
  const token = form.elements.token.value.trim();
  if (mode() === 'play' || mode() === 'hls') {
    session = mode() === 'play'
      ? new Player(video, { name, token, layer: params.get('layer') || '' })
      : new HLSPlayer(video, { name, token });
    video.muted = true; // browsers only autoplay muted video
    setMuteLabel();
  } else {
    session = new Publisher(video, {
      name,
      token,
      source: form.elements.source.value,
      audio: form.elements.audio.checked,
      codec: form.elements.codec.value,
      bitrateKbps: Number(bitrateInput.value) || 0,
      simulcast: params.get('simulcast') === '1',
    });
  }
  session.addEventListener('change', render);
  render();
  await session.start();
}

async function stop() {
  if (session) await session.stop();
}

function setMuteLabel() {
  unmuteButton.textContent = video.muted ? 'Unmute' : 'Mute';
  unmuteButton.setAttribute('aria-pressed', String(!video.muted));
}

window.sluice = {
  get state() { return session ? session.state : 'idle'; },
  get lastError() { return session ? session.lastError : ''; },
  get stats() { return session ? session.stats : null; },
  get ttffMs() { return session instanceof Player ? session.ttffMs : null; },
  get recoveryMs() { return session instanceof Player ? session.recoveryMs : null; },
  get reconnects() { return session instanceof Player ? session.reconnects : 0; },
  get events() { return session ? session.events : []; },
  framesDecoded: () => (session ? session.framesDecoded() : 0),
  start: () => start(),
  stop: () => stop(),
  trackSettings: () => (session instanceof Publisher ? session.trackSettings() : null),
  senderParameters: () => (session instanceof Publisher ? session.senderParameters() : []),
  setBitrate: (kbps) => {
    bitrateInput.value = String(kbps);
    return session instanceof Publisher ? session.setBitrate(kbps) : Promise.resolve();
  },
  videoSize: () => ({ width: video.videoWidth, height: video.videoHeight }),
  hls: () => {
    const b = video.buffered;
    return {
      engine: session instanceof HLSPlayer ? session.engine : '',
      currentTime: video.currentTime,
      videoWidth: video.videoWidth,
      videoHeight: video.videoHeight,
      buffered: b.length ? b.end(b.length - 1) - video.currentTime : 0,
      latency: session instanceof HLSPlayer && session.hls ? session.hls.latency : null,
    };
  },
  async rawStats(type) {
    const pc = session && session.pc;
    if (!pc) return [];
    return [...(await pc.getStats()).values()].filter((r) => !type || r.type === type);
  },
};

form.addEventListener('submit', (e) => {
  e.preventDefault();
  start();
});
form.addEventListener('change', (e) => {
  if (e.target.name === 'mode') showOptions();
});
stopButton.addEventListener('click', () => stop());
unmuteButton.addEventListener('click', () => {
  video.muted = !video.muted;
  setMuteLabel();
  video.play().catch(() => {});
});
bitrateInput.addEventListener('change', () => {
  if (!(session instanceof Publisher)) return;
  session.setBitrate(Number(bitrateInput.value) || 0).catch((err) => {
    session.set({ lastError: 'bitrate: ' + (err.message || String(err)) });
  });
});
// Leaving the page ends the session on the server too.
window.addEventListener('pagehide', () => {
  if (session) session.leave();
});

const params = new URLSearchParams(location.search);
const setIf = (name, el) => {
  if (params.has(name)) el.value = params.get(name);
};
setIf('stream', form.elements.stream);
setIf('token', form.elements.token);
setIf('source', form.elements.source);
setIf('bitrate', bitrateInput);
if (params.get('codec') in VIDEO_CODECS) form.elements.codec.value = params.get('codec');
if (params.get('audio') === '0') form.elements.audio.checked = false;
const m = params.get('mode');
if (m === 'play' || m === 'publish' || m === 'hls') form.elements.mode.value = m;
showOptions();
render();
if (params.get('autostart') === '1') start();
