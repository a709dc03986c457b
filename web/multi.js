// sluice multi-view: play several streams at once (a monitoring wall, or a
// small conference when the page also publishes its own camera). Plain ES
// module, no build step.
//
// Query parameters: streams=a,b,c (starts at once), publish=NAME (also
// publish the camera and microphone as NAME), codec=h264|vp8|vp9|av1 (for that),
// token=TOKEN (sent as Bearer on every request), autostart=0 (wait for Start).
//
// Test hooks on window.sluice:
//   state               'idle' | 'running' | 'stopped'
//   lastError           '' or why Start did nothing
//   names()             the streams shown, the published one first
//   tile(name)          {state, lastError, framesDecoded, stats, ttffMs,
//                       width, height} of one stream's tile, or null
//   framesDecoded(name) frames that tile's <video> element has shown
//   rawStats(name, type) that tile's PeerConnection's getStats() entries of
//                       that type ('outbound-rtp', ...), or all of them
//   start(), stop()     the same as the buttons

import { Player, Publisher, VIDEO_CODECS, formatStats } from './client.js';

const $ = (id) => document.getElementById(id);
const form = $('form');
const grid = $('grid');
const startButton = $('start');
const stopButton = $('stop');
const errorOut = $('error');
const template = $('tile');
const NAME = /^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,127}$/; // as the server checks

let state = 'idle';
let lastError = '';
let codec = 'h264';
const tiles = new Map(); // name → {session, figure}

function setRunning(running) {
  state = running ? 'running' : (state === 'idle' ? 'idle' : 'stopped');
  startButton.disabled = running;
  stopButton.disabled = !running;
  for (const el of form.querySelectorAll('input')) el.disabled = running;
}

function showError(message) {
  lastError = message;
  errorOut.textContent = message;
}

function addTile(name, session, label) {
  const figure = template.content.firstElementChild.cloneNode(true);
  const video = figure.querySelector('video');
  const stats = figure.querySelector('.stats');
  const stateOut = figure.querySelector('.state');
  const note = figure.querySelector('.note');
  const unmute = figure.querySelector('.unmute');
  figure.querySelector('.name').textContent = label;
  figure.dataset.stream = name;
  const s = session(video);
  const render = () => {
    stateOut.textContent = s.state;
    figure.dataset.state = s.state;
    note.textContent = s.lastError && s.state !== 'connected' ? s.note || s.lastError : s.note;
    stats.hidden = !s.stats || s.state !== 'connected';
    if (s.stats) stats.textContent = formatStats(s.stats);
  };
  s.addEventListener('change', render);
  if (s instanceof Publisher) {
    unmute.hidden = true; // never play our own microphone
  } else {
    unmute.addEventListener('click', () => {
      video.muted = !video.muted;
      unmute.textContent = video.muted ? 'Unmute' : 'Mute';
      unmute.setAttribute('aria-pressed', String(!video.muted));
      video.play().catch(() => {});
    });
  }
  grid.append(figure);
  tiles.set(name, { session: s, figure });
  render();
  s.start();
}

function parseNames(text) {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
}

async function start() {
  await stop();
  showError('');
  const token = form.elements.token.value.trim();
  const own = form.elements.publish.value.trim();
  const names = parseNames(form.elements.streams.value).filter((n) => n !== own);
  const bad = [own, ...names].filter((n) => n && !NAME.test(n));
  if (bad.length) {
    showError('invalid stream name: ' + bad.join(', ') + ' (1–128 of A-Z a-z 0-9 - _ . ~, not starting with a dot)');
    return;
  }
  if (!own && names.length === 0) {
    showError('name at least one stream to watch or publish');
    return;
  }
  setRunning(true);
  grid.dataset.count = String(names.length + (own ? 1 : 0));
  if (own) {
    addTile(own, (video) => new Publisher(video, { name: own, token, codec }), own + ' (you)');
  }
  for (const name of names) {
    addTile(name, (video) => new Player(video, { name, token }), name);
  }
}

async function stop() {
  const all = [...tiles.values()];
  tiles.clear();
  grid.replaceChildren();
  if (state === 'running') setRunning(false);
  await Promise.all(all.map((t) => t.session.stop()));
}

window.sluice = {
  get state() { return state; },
  get lastError() { return lastError; },
  names: () => [...tiles.keys()],
  tile(name) {
    const t = tiles.get(name);
    if (!t) return null;
    const s = t.session;
    const video = t.figure.querySelector('video');
    return {
      state: s.state,
      lastError: s.lastError,
      framesDecoded: s.framesDecoded(),
      stats: s.stats,
      ttffMs: s.ttffMs === undefined ? null : s.ttffMs,
      width: video.videoWidth,
      height: video.videoHeight,
    };
  },
  framesDecoded: (name) => (tiles.has(name) ? tiles.get(name).session.framesDecoded() : 0),
  async rawStats(name, type) {
    const pc = tiles.has(name) && tiles.get(name).session.pc;
    if (!pc) return [];
    return [...(await pc.getStats()).values()].filter((r) => !type || r.type === type);
  },
  start: () => start(),
  stop: () => stop(),
};

form.addEventListener('submit', (e) => {
  e.preventDefault();
  start();
});
stopButton.addEventListener('click', () => stop());
window.addEventListener('pagehide', () => {
  for (const t of tiles.values()) t.session.leave();
});

const params = new URLSearchParams(location.search);
if (params.has('streams')) form.elements.streams.value = parseNames(params.get('streams')).join(', ');
if (params.has('publish')) form.elements.publish.value = params.get('publish');
if (params.has('token')) form.elements.token.value = params.get('token');
if (params.get('codec') in VIDEO_CODECS) codec = params.get('codec');
if ((params.has('streams') || params.has('publish')) && params.get('autostart') !== '0') start();
