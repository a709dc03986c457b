// Browser test of a pulled camera: MediaMTX serves RTSP on a port of its
// own, fed by ffmpeg with what an IP camera sends (H264 with a keyframe
// every 4 s, PCMA audio: a 440 Hz tone); sluice pulls it always-on as a
// `sources:` entry; the page plays it in Chromium, video and audio, for
// several joins, and the test reports the time to first frame (the page's
// ttffMs: start(), which sends the WHEP POST, to the first frame shown)
// as p50 and max. With the GOP cache a join does not wait for the
// camera's next keyframe.
//
// Needs ffmpeg and MediaMTX built from ../shared/peers
// (scripts/build-mediamtx.sh; MEDIAMTX=/path picks another binary); the
// test skips, saying so, without them.
//
// Run: node --test test/browser/camera.test.mjs (after
// scripts/test-browser.sh installed Chromium and playwright-core).

import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Pages, Server, launchBrowser, outDir, repoRoot, sleep, waitFor } from './harness.mjs';

const JOINS = 6;
const GOP_SECONDS = 4;

function findMediaMTX() {
  if (process.env.MEDIAMTX) return process.env.MEDIAMTX;
  try {
    return execFileSync(path.join(repoRoot, 'scripts', 'build-mediamtx.sh'), ['--path'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch (_) {
    return '';
  }
}

function hasFFmpeg() {
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    return true;
  } catch (_) {
    return false;
  }
}

function freeTCPPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitPort(port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => { c.destroy(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

// stopProc ends a child with SIGINT, then SIGKILL after 5 s.
async function stopProc(p) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((resolve) => p.once('exit', resolve));
  p.kill('SIGINT');
  const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const mediamtx = findMediaMTX();
const skip = !hasFFmpeg() ? 'ffmpeg not found (apt-get install ffmpeg)'
  : !mediamtx ? 'MediaMTX is not built: run scripts/build-mediamtx.sh, or set MEDIAMTX=/path/to/mediamtx' : false;

describe('a pulled RTSP camera in Chromium', { timeout: 120000, skip }, () => {
  let server;
  let browser;
  let pages;
  let mtx;
  let ff;
  let camLog;
  let mtxDir;

  before(async () => {
    fs.mkdirSync(outDir, { recursive: true });
    camLog = fs.createWriteStream(path.join(outDir, 'camera.log'));
    const port = await freeTCPPort();
    mtxDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-camera-'));
    const cfg = path.join(mtxDir, 'mediamtx.yml');
    fs.writeFileSync(cfg, [
      'logLevel: info',
      'api: false', 'metrics: false', 'pprof: false', 'playback: false',
      'rtsp: true', 'rtspTransports: [tcp]', `rtspAddress: 127.0.0.1:${port}`,
      'rtmp: false', 'hls: false', 'webrtc: false', 'srt: false', 'moq: false',
      'paths:', '  all_others:', '',
    ].join('\n'));
    mtx = spawn(mediamtx, [cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    mtx.stdout.pipe(camLog, { end: false });
    mtx.stderr.pipe(camLog, { end: false });
    await waitPort(port, 10000);
    // The camera: H264 constrained baseline with a keyframe every 4 s (no
    // scene-cut keyframes), PCMA 8 kHz mono, pushed into MediaMTX.
    ff = spawn('ffmpeg', ['-v', 'error', '-re',
      '-f', 'lavfi', '-i', 'testsrc=size=640x480:rate=25',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=8000',
      '-c:v', 'libx264', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p', '-tune', 'zerolatency',
      '-g', String(25 * GOP_SECONDS), '-keyint_min', String(25 * GOP_SECONDS), '-sc_threshold', '0',
      '-c:a', 'pcm_alaw', '-ar', '8000', '-ac', '1',
      '-f', 'rtsp', '-rtsp_transport', 'tcp', `rtsp://127.0.0.1:${port}/cam`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    ff.stdout.pipe(camLog, { end: false });
    ff.stderr.pipe(camLog, { end: false });

    server = await Server.start(`
sources:
  - stream: cam
    url: rtsp://127.0.0.1:${port}/cam
    transport: tcp
`);
    browser = await launchBrowser();
    pages = new Pages(browser, server);
  });

  after(async () => {
    if (pages) await pages.close();
    if (browser) await browser.close();
    if (server) await server.close();
    await stopProc(ff);
    await stopProc(mtx);
    if (camLog) camLog.end();
    if (mtxDir) fs.rmSync(mtxDir, { recursive: true, force: true });
  });

  test(`plays the camera with sound; time to first frame over ${JOINS} joins`, { timeout: 100000 }, async () => {
    // ffmpeg needs a moment to publish: the source backs off meanwhile.
    const deadline = Date.now() + 30000;
    let src;
    for (;;) {
      const r = await fetch(server.url + '/v1/streams/cam');
      src = r.ok ? await r.json() : { status: r.status };
      if (src.source && src.source.state === 'connected' && src.live) break;
      if (Date.now() > deadline) assert.fail('source cam not connected and live in 30 s: ' + JSON.stringify(src));
      await sleep(200);
    }
    assert.deepEqual(src.tracks.map((t) => t.codec).slice(0, 2), ['H264', 'PCMA'], JSON.stringify(src.tracks));
    // A whole GOP in, so that every join finds a cached keyframe.
    await sleep(GOP_SECONDS * 1000 + 500);

    const ttffs = [];
    for (let i = 0; i < JOINS; i++) {
      const page = await pages.open('/?stream=cam&mode=play', 'play cam #' + i);
      await page.click('#start');
      await waitFor(page, 'a first decoded frame', () => window.sluice.framesDecoded() > 0, undefined, 15000);
      const ttff = await waitFor(page, 'ttffMs', () => window.sluice.ttffMs, undefined, 5000);
      ttffs.push(ttff);
      if (i === 0) {
        await waitFor(page, '25 more decoded frames', () => window.sluice.framesDecoded() >= 25, undefined, 15000);
        const size = await page.evaluate(() => window.sluice.videoSize());
        assert.deepEqual(size, { width: 640, height: 480 });
        // Sound: an audio track that receives bytes and plays a tone
        // (totalAudioEnergy grows only with non-silent samples played out;
        // Chromium plays out nothing of a muted element: unmute it).
        await page.click('#unmute');
        assert.equal(await page.evaluate(() => document.getElementById('video').muted), false);
        const audio = await waitFor(page, 'audio with energy', async () => {
          const a = (await window.sluice.rawStats('inbound-rtp')).find((r) => r.kind === 'audio');
          return a && a.packetsReceived > 25 && a.bytesReceived > 0 && a.totalAudioEnergy > 0 && a;
        }, undefined, 15000).catch(async (err) => {
          const seen = await page.evaluate(async () => ({
            audio: (await window.sluice.rawStats('inbound-rtp')).filter((r) => r.kind === 'audio'),
            codecs: (await window.sluice.rawStats('codec')).map((c) => c.mimeType + ' ' + (c.sdpFmtpLine || '')),
          }));
          throw new Error(err.message + '; audio stats ' + JSON.stringify(seen));
        });
        const codecs = await page.evaluate(async () => (await window.sluice.rawStats('codec')).map((c) => c.mimeType));
        console.log(`camera audio in Chromium: ${audio.packetsReceived} packets, ${audio.bytesReceived} bytes, ` +
          `audioLevel ${audio.audioLevel}, totalAudioEnergy ${audio.totalAudioEnergy.toFixed(4)}; codecs ${codecs.join(', ')}`);
        await page.screenshot({ path: path.join(outDir, 'camera.png') });
      }
      await page.close();
      // Join at other phases of the camera's 4 s GOP.
      await sleep(700 + Math.floor(Math.random() * 800));
    }
    const sorted = [...ttffs].sort((a, b) => a - b);
    const line = `TTFF pulled camera (RTSP, H264 ${GOP_SECONDS} s GOP + PCMA, always-on), ${JOINS} joins: ` +
      `p50 ${Math.round(percentile(sorted, 0.5))} ms, max ${Math.round(sorted[sorted.length - 1])} ms ` +
      `(all: ${ttffs.map((x) => Math.round(x)).join(', ')} ms)`;
    console.log(line);
    fs.appendFileSync(path.join(outDir, 'timings.txt'), line + '\n');
    // A number to read, not a timed assertion (a busy machine is slower).
    assert.deepEqual(pages.problems, []);
  });
});
