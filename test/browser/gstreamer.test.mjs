// A GStreamer publisher played by Chromium: webrtcbin (driven from
// python3-gi by gst_whip.py) publishes x264enc Constrained Baseline
// (profile-level-id=42c0xx, as GStreamer writes it) and Opus over WHIP;
// Chromium, whose offer lists H264 as 42001f, 42e01f, 4d001f, 64001f …,
// plays it with WHEP. sluice matches H264 profiles by meaning, so the
// player decodes the publisher's picture instead of getting 406.
//
// Needs GStreamer 1.22 with webrtcbin, x264enc, libnice and python3-gi
// (scripts/test-browser.sh installs them). Run:
// `node --test test/browser/gstreamer.test.mjs`.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { Pages, Server, launchBrowser, repoRoot, waitFor } from './harness.mjs';

describe('a GStreamer publisher in Chromium', { timeout: 90000 }, () => {
  let server;
  let browser;
  let pages;
  let gst;

  before(async () => {
    server = await Server.start();
    browser = await launchBrowser();
    pages = new Pages(browser, server);
  });

  after(async () => {
    if (gst && gst.exitCode === null) {
      gst.kill('SIGTERM');
      await new Promise((resolve) => gst.once('exit', resolve));
    }
    if (pages) await pages.close();
    if (browser) await browser.close();
    if (server) await server.close();
  });

  test('webrtcbin H264 42c0xx + Opus, played by Chromium', { timeout: 60000 }, async () => {
    gst = spawn('/usr/bin/python3', [path.join(repoRoot, 'test/browser/gst_whip.py'), server.url + '/whip/gst', '80'],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = readline.createInterface({ input: gst.stdout });
    let fmtp = null;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('GStreamer publisher not connected within 20 s')), 20000);
      gst.once('exit', (code) => reject(new Error('gst_whip.py exited ' + code)));
      lines.on('line', (l) => {
        if (l.startsWith('OFFER-H264 ')) fmtp = l.slice('OFFER-H264 '.length);
        if (l.startsWith('ERROR ')) reject(new Error(l));
        if (l === 'CONNECTED') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    assert.match(fmtp, /profile-level-id=42c0[0-9a-f]{2}/i, 'GStreamer offers Constrained Baseline as 42c0xx: ' + fmtp);

    const page = await pages.open('/?stream=gst&mode=play', 'play gst');
    await page.click('#start');
    await waitFor(page, 'a first decoded frame', () => window.sluice.framesDecoded() > 0);
    const f0 = await page.evaluate(() => window.sluice.framesDecoded());
    await waitFor(page, 'framesDecoded to grow by 30', (n) => window.sluice.framesDecoded() >= n + 30, f0);
    const size = await waitFor(page, 'the player to show 320x240', () => {
      const s = window.sluice.videoSize();
      return s.width === 320 && s.height === 240 && s;
    });
    assert.deepEqual(size, { width: 320, height: 240 });
    const stats = await waitFor(page, 'audio and video stats', () => {
      const s = window.sluice.stats;
      return s && s.audioPackets > 0 && s.audioSamples > 0 && s.framesDecoded > 0 && s.videoCodec && s;
    });
    assert.equal(stats.videoCodec.toLowerCase(), 'video/h264');
    assert.equal(stats.audioCodec.toLowerCase(), 'audio/opus');
    assert.deepEqual(pages.problems, []);
  });
});
