// sluice console: every live stream with a thumbnail (its snapshot),
// source, codecs, size, bit rate, viewers, uptime and recording state,
// refreshed every 2 s; click a thumbnail to play the stream live (WHEP),
// or a point of its 24 h recordings timeline to play the recording from
// there (/playback/ in a <video>). Plain ES module, no build step.
//
// Query parameters: token=TOKEN (Bearer on the API calls and WHEP, ?token=
// on the snapshot and playback URLs, which <img> and <video> fetch).
//
// Test hooks on window.sluice:
//   streams()            the names shown
//   card(name)           {thumbWidth, thumbHeight, recordings, recording,
//                        source} of a card
//   playLive(name)       as a click on its thumbnail
//   playRecording(name, fraction)  as a click on its timeline at fraction
//                        (0: 24 h ago, 1: now); resolves to the URL played
//   live()               {state, framesDecoded, stats} of the live player
//   recorded()           {src, framesDecoded, currentTime, error} of the
//                        recording player

import { Player, authHeaders, formatStats } from './client.js';

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 2000;
const DAY_MS = 24 * 3600 * 1000;
const PLAY_SECONDS = 600; // how much of a recording one click plays at most

const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
const grid = $('streams');
const template = $('card');
const cards = new Map(); // name → {el, prevBytes, prevAt, recordings}
let player = null; // the live Player
let livePlaying = '';

function api(path) {
  return new URL(path, location.href);
}

// withToken adds ?token= for the URLs that <img> and <video> fetch
// themselves (no Authorization header there).
function withToken(url) {
  if (token) url.searchParams.set('token', token);
  return url;
}

async function getJSON(path) {
  const resp = await fetch(api(path), { headers: authHeaders(token), cache: 'no-store' });
  if (!resp.ok) throw new Error(path + ': HTTP ' + resp.status + ': ' + (await resp.text()).trim());
  return resp.json();
}

function showError(message) {
  $('error').textContent = message;
}

function formatDuration(s) {
  s = Math.floor(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return (h ? h + ' h ' : '') + (h || m ? m + ' min ' : '') + (s % 60) + ' s';
}

function formatRate(bps) {
  if (bps === null) return '…';
  return bps >= 1e6 ? (bps / 1e6).toFixed(2) + ' Mb/s' : Math.round(bps / 1000) + ' kb/s';
}

function newCard(name) {
  const el = template.content.firstElementChild.cloneNode(true);
  el.dataset.stream = name;
  el.querySelector('.name').textContent = name;
  el.querySelector('.thumb').addEventListener('click', () => playLive(name));
  el.querySelector('.timeline').addEventListener('click', (e) => {
    const r = e.currentTarget.getBoundingClientRect();
    playRecording(name, (e.clientX - r.left) / r.width);
  });
  grid.append(el);
  const c = { el, prevBytes: null, prevAt: 0, recordings: [] };
  cards.set(name, c);
  return c;
}

// originText says how the stream comes in: "WHIP from 10.0.0.7:50123",
// "RTSP from …", "RTSP pull of rtsp://camera/…" (a configured source).
function originText(s) {
  const o = s.origin;
  if (!o) return s.live === false ? 'not live' : 'publisher away';
  const proto = o.protocol.toUpperCase();
  if (o.pulled && s.source) return proto + ' pull of ' + s.source.url;
  return proto + (o.remote ? ' from ' + o.remote : '');
}

function render(c, s, now) {
  const q = (sel) => c.el.querySelector(sel);
  q('.source').textContent = originText(s);
  q('.codecs').textContent = s.tracks.map((t) => t.codec).join(', ') || '—';
  const v = s.tracks.find((t) => t.video);
  q('.size').textContent = v ? v.video.width + '×' + v.video.height : '—';
  let rate = null;
  if (c.prevBytes !== null && now > c.prevAt) {
    rate = Math.max(0, (s.ingested_bytes - c.prevBytes) * 8 / ((now - c.prevAt) / 1000));
  }
  c.prevBytes = s.ingested_bytes;
  c.prevAt = now;
  if (rate !== null || q('.bitrate').textContent === '') q('.bitrate').textContent = formatRate(rate);
  q('.viewers').textContent = String(s.viewers);
  q('.uptime').textContent = formatDuration(s.uptime_seconds);
  q('.recording').textContent = s.recording ? 'recording' : 'no';
  c.el.dataset.recording = String(s.recording);
  const img = q('.thumb img');
  img.src = withToken(api('v1/streams/' + encodeURIComponent(s.name) + '/snapshot.jpg?t=' + Math.floor(now))).href;
}

async function renderTimeline(c, name, now) {
  let rec;
  try {
    rec = await getJSON('v1/recordings/' + encodeURIComponent(name));
  } catch (_) {
    return; // recording not configured, or not allowed: no timeline
  }
  c.recordings = rec.segments;
  const bar = c.el.querySelector('.timeline');
  for (const old of bar.querySelectorAll('.rec')) old.remove();
  const from = now - DAY_MS;
  for (const seg of rec.segments) {
    const start = Date.parse(seg.start);
    const end = start + seg.duration_s * 1000;
    if (end < from) continue;
    const el = document.createElement('div');
    el.className = 'rec';
    el.style.left = (100 * Math.max(0, start - from) / DAY_MS) + '%';
    el.style.width = (100 * (end - Math.max(start, from)) / DAY_MS) + '%';
    el.title = seg.start + ', ' + formatDuration(seg.duration_s);
    bar.append(el);
  }
}

async function refresh() {
  let list;
  try {
    list = await getJSON('v1/streams');
    showError('');
  } catch (e) {
    showError(String(e.message || e));
    return;
  }
  const now = Date.now();
  const seen = new Set();
  for (const s of list.streams) {
    seen.add(s.name);
    const c = cards.get(s.name) || newCard(s.name);
    render(c, s, now);
    renderTimeline(c, s.name, now);
  }
  for (const [name, c] of cards) {
    if (!seen.has(name)) {
      c.el.remove();
      cards.delete(name);
    }
  }
  $('empty').hidden = cards.size > 0;
}

function showPlayer(title, live) {
  $('player').hidden = false;
  $('playing').textContent = title;
  $('live').hidden = !live;
  $('live-stats').hidden = !live;
  $('recorded').hidden = live;
  $('player-note').textContent = '';
}

async function stopLive() {
  if (player) {
    const p = player;
    player = null;
    livePlaying = '';
    await p.stop();
  }
}

async function playLive(name) {
  await stopLive();
  const rec = $('recorded');
  rec.pause();
  rec.removeAttribute('src');
  showPlayer(name + ' (live)', true);
  const video = $('live');
  player = new Player(video, { name, token });
  livePlaying = name;
  player.addEventListener('change', () => {
    if (!player) return;
    $('live-stats').textContent = formatStats(player.stats);
    $('player-note').textContent = player.lastError || player.note || '';
  });
  player.start();
}

// playRecording plays a stream's recording from the point of its timeline
// at fraction (0: 24 h ago, 1: now): from the run there, or the next one
// after it.
async function playRecording(name, fraction) {
  const c = cards.get(name);
  if (!c) return '';
  const now = Date.now();
  let at = now - DAY_MS + fraction * DAY_MS;
  let seg = null;
  for (const s of c.recordings) {
    const start = Date.parse(s.start);
    const end = start + s.duration_s * 1000;
    if (end <= at) continue;
    seg = s;
    at = Math.max(at, start);
    break;
  }
  if (!seg) {
    showPlayer(name + ' (recording)', false);
    $('player-note').textContent = 'no recording after ' + new Date(at).toLocaleString();
    return '';
  }
  const end = Date.parse(seg.start) + seg.duration_s * 1000;
  const seconds = Math.max(1, Math.min(PLAY_SECONDS, (end - at) / 1000));
  await stopLive();
  showPlayer(name + ' (recording from ' + new Date(at).toLocaleString() + ')', false);
  const url = withToken(api('playback/' + encodeURIComponent(name) + '.mp4'));
  url.searchParams.set('start', new Date(at).toISOString());
  url.searchParams.set('duration', seconds.toFixed(3));
  const video = $('recorded');
  video.src = url.href;
  video.play().catch(() => {});
  return url.href;
}

{
  $('recorded').addEventListener('error', () => {
    const e = $('recorded').error;
    $('player-note').textContent = 'playback failed' + (e ? ': ' + (e.message || 'code ' + e.code) : '');
  });
}

$('close').addEventListener('click', async () => {
  await stopLive();
  const rec = $('recorded');
  rec.pause();
  rec.removeAttribute('src');
  rec.load();
  $('player').hidden = true;
});
window.addEventListener('pagehide', () => {
  if (player) player.leave();
});

window.sluice = {
  streams: () => [...cards.keys()],
  card(name) {
    const c = cards.get(name);
    if (!c) return null;
    const img = c.el.querySelector('.thumb img');
    return {
      thumbWidth: img.complete ? img.naturalWidth : 0,
      thumbHeight: img.complete ? img.naturalHeight : 0,
      recordings: c.recordings,
      recording: c.el.dataset.recording === 'true',
      source: c.el.querySelector('.source').textContent,
    };
  },
  playLive: (name) => playLive(name),
  playRecording: (name, fraction) => playRecording(name, fraction),
  live() {
    if (!player) return null;
    return { stream: livePlaying, state: player.state, framesDecoded: player.framesDecoded(), stats: player.stats };
  },
  recorded() {
    const v = $('recorded');
    return {
      src: v.currentSrc,
      framesDecoded: v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0,
      currentTime: v.currentTime,
      duration: v.duration,
      error: v.error ? v.error.code : 0,
    };
  },
};

refresh();
setInterval(refresh, REFRESH_MS);
