// Browser test of a Chromium publisher's bit rate on the detached path:
// with webrtc.detach_publishers on, sluice (not pion) reads the
// publisher's SRTP and sends its transport-wide congestion-control
// feedback (TWCC); without that feedback Chromium's bandwidth estimator
// falls and its bit rate with it. The page publishes H264 with maxBitrate
// set (setParameters) from a source of random noise (a canvas in place of
// the camera: noise does not compress, so the encoder spends what the
// estimate allows), and the test reads Chromium's getStats() every 250 ms
// for 10 s from the moment it is connected: the send rate (outbound-rtp
// bytesSent over each second), the encoder's targetBitrate and the
// bandwidth estimate (candidate-pair availableOutgoingBitrate), and the
// server's rtp_path for the session. Within the 10 s the send rate must
// reach 90% of the maximum, the estimate stay above it from 2 s after
// the detach, and the last second still be sent at 70% of it. The same
// is measured with detach off (pion's interceptors send the feedback) in
// the same run, for comparison; the numbers go to out/timings.txt.
//
// Run: node --test test/browser/bitrate.test.mjs (after
// scripts/test-browser.sh installed Chromium and playwright-core).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { Server, launchBrowser, outDir, sleep, waitFor } from './harness.mjs';

const MAX_KBPS = 1500; // the publisher's maxBitrate
const WINDOW_MS = 10000; // from connected: the estimate must reach MAX_KBPS in this
const SAMPLE_MS = 250;
// The send rate must come this near the maximum within WINDOW_MS.
const SEND_FRACTION = 0.9;
// The last second's send rate must still be this near the maximum.
const HOLD_FRACTION = 0.7;

// publisherSession is the server's WHIP session, from GET /v1/sessions.
async function publisherSession(server) {
  const r = await fetch(server.url + '/v1/sessions');
  const body = await r.json();
  return (body.sessions || []).find((s) => s.kind === 'whip') || null;
}

// NOISE replaces the page's camera with a canvas of fresh random pixels
// every frame: noise does not compress, so the encoder spends whatever it
// is allowed and the send rate shows the bandwidth estimate, not the
// content (the fake camera's simple pattern needs only ~400 kbit/s).
const NOISE = `(() => {
  const md = navigator.mediaDevices;
  md.getUserMedia = async () => {
    const c = document.createElement('canvas');
    c.width = 320; c.height = 180;
    const g = c.getContext('2d');
    const img = g.createImageData(c.width, c.height);
    const px = new Uint32Array(img.data.buffer);
    let x = 0x9e3779b9;
    const draw = () => {
      for (let i = 0; i < px.length; i++) {
        x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
        px[i] = x | 0xff000000;
      }
      g.putImageData(img, 0, 0);
    };
    draw();
    setInterval(draw, 33);
    return c.captureStream(30);
  };
})();`;

// measure publishes the noise source on server and samples the sender's
// statistics for WINDOW_MS from the moment it is connected.
async function measure(browser, server, stream) {
  const context = await browser.newContext();
  const problems = [];
  try {
    await context.addInitScript(NOISE);
    const page = await context.newPage();
    page.on('pageerror', (err) => problems.push('uncaught ' + err.message));
    await page.goto(server.url + `/?stream=${stream}&mode=publish&autostart=1&codec=h264&audio=0&bitrate=${MAX_KBPS}`);
    await waitFor(page, stream + ' publisher connected', () => window.sluice.state === 'connected');
    const t0 = Date.now();
    const enc = await page.evaluate(() => window.sluice.senderParameters());
    assert.equal(enc[0].maxBitrate, MAX_KBPS * 1000, 'maxBitrate: ' + JSON.stringify(enc));

    const samples = []; // {t, bytes, target, avail, rtt, lost, path}
    while (Date.now() - t0 <= WINDOW_MS) {
      const s = await page.evaluate(async () => {
        const all = await window.sluice.rawStats();
        const out = all.filter((r) => r.type === 'outbound-rtp' && r.kind === 'video');
        const pair = all.find((r) => r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded');
        const rin = all.find((r) => r.type === 'remote-inbound-rtp' && r.kind === 'video');
        return {
          bytes: out.reduce((n, r) => n + (r.bytesSent || 0) + (r.headerBytesSent || 0), 0),
          target: out.reduce((n, r) => n + (r.targetBitrate || 0), 0),
          avail: pair ? pair.availableOutgoingBitrate || 0 : 0,
          rtt: rin ? rin.roundTripTime : null,
          lost: rin ? rin.packetsLost : null,
        };
      });
      const sess = await publisherSession(server);
      samples.push({ t: Date.now() - t0, path: sess ? sess.rtp_path : '', ...s });
      await sleep(SAMPLE_MS);
    }
    // The send rate over each second (four samples back).
    const rate = (a, b) => ((b.bytes - a.bytes) * 8) / (b.t - a.t);
    let peakSend = 0;
    let reachedSendMs = null;
    for (let i = 4; i < samples.length; i++) {
      const kbps = rate(samples[i - 4], samples[i]);
      peakSend = Math.max(peakSend, kbps);
      if (reachedSendMs === null && kbps >= SEND_FRACTION * MAX_KBPS) reachedSendMs = samples[i].t;
    }
    const detachedAt = samples.find((x) => x.path === 'direct');
    const reached = samples.find((x) => x.avail >= MAX_KBPS * 1000);
    // After detaching (or from the start, on pion): the estimate at its lowest.
    const since = samples.filter((x) => x.t >= (detachedAt ? detachedAt.t : 0) + 2000);
    const last = samples.slice(-5);
    assert.equal(problems.length, 0, problems.join('\n'));
    const sess = await publisherSession(server);
    return {
      sess,
      path: samples[samples.length - 1].path,
      detachedAtMs: detachedAt ? detachedAt.t : null,
      estimateReachedMs: reached ? reached.t : null,
      peakAvailKbps: Math.round(Math.max(...samples.map((x) => x.avail)) / 1000),
      minAvailLaterKbps: since.length ? Math.round(Math.min(...since.map((x) => x.avail)) / 1000) : null,
      peakTargetKbps: Math.round(Math.max(...samples.map((x) => x.target)) / 1000),
      peakSendKbps: Math.round(peakSend),
      sendReachedMs: reachedSendMs,
      lastSecondSendKbps: Math.round(rate(last[0], last[last.length - 1])),
      rttMs: last[last.length - 1].rtt === null ? null : Math.round(last[last.length - 1].rtt * 1000),
      lost: last[last.length - 1].lost,
    };
  } finally {
    await context.close();
  }
}

function describeRun(label, r) {
  return `bitrate ${label}: path ${r.path}` + (r.detachedAtMs === null ? '' : ` (detached ${r.detachedAtMs} ms after connecting)`) +
    `; estimate (availableOutgoingBitrate) reached ${MAX_KBPS} kbit/s after ` +
    `${r.estimateReachedMs === null ? 'never (10 s)' : r.estimateReachedMs + ' ms'}, peak ${r.peakAvailKbps}, ` +
    `lowest from 2 s after detaching ${r.minAvailLaterKbps} kbit/s; encoder target peak ${r.peakTargetKbps} kbit/s; ` +
    `send rate ${SEND_FRACTION * 100}% of max after ${r.sendReachedMs === null ? 'never' : r.sendReachedMs + ' ms'}, ` +
    `peak ${r.peakSendKbps}, last second ${r.lastSecondSendKbps} kbit/s; RTT ${r.rttMs} ms, ${r.lost} lost`;
}

describe('a Chromium publisher reaches its maximum bit rate', { timeout: 90000 }, () => {
  let direct;
  let pion;
  let browser;
  // The numbers are added to timings.txt, after the other suites'.
  const timings = {
    add(line) {
      console.log(line);
      fs.mkdirSync(outDir, { recursive: true });
      fs.appendFileSync(path.join(outDir, 'timings.txt'), line + '\n');
    },
  };

  before(async () => {
    direct = await Server.start('webrtc:\n  detach_publishers: true\n');
    pion = await Server.start('webrtc:\n  detach_publishers: false\n');
    browser = await launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (direct) await direct.close();
    if (pion) await pion.close();
  });

  test('detached from pion: the estimate reaches maxBitrate within 10 s (TWCC from sluice)', { timeout: 40000 }, async () => {
    const r = await measure(browser, direct, 'rate-direct');
    timings.add(describeRun('detached', r));
    assert.equal(r.path, 'direct', 'publisher session: ' + JSON.stringify(r.sess));
    assert.ok(r.sess && r.sess.detached, 'publisher not detached: ' + JSON.stringify(r.sess));
    assert.notEqual(r.estimateReachedMs, null, describeRun('detached', r));
    assert.notEqual(r.sendReachedMs, null, describeRun('detached', r));
    // And holds it: the estimate stays above the maximum from 2 s after
    // detaching, and the last second is still sent near it.
    assert.ok(r.minAvailLaterKbps >= MAX_KBPS, describeRun('detached', r));
    assert.ok(r.lastSecondSendKbps >= HOLD_FRACTION * MAX_KBPS, describeRun('detached', r));
  });

  test('on pion (detach off), for comparison', { timeout: 40000 }, async () => {
    const r = await measure(browser, pion, 'rate-pion');
    timings.add(describeRun('pion', r));
    assert.equal(r.path, 'pion', 'publisher session: ' + JSON.stringify(r.sess));
  });
});
