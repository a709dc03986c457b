// Browser test of the multi-view page's stats overlays: each tile's frame
// rate (web/client.js summarize, shared with the other pages) within 20 %
// of what its publisher really sends, measured over the same seconds from
// the publisher's raw getStats() counters; and a bit rate that is not 0
// from the first overlay that has rates. One camera is published from the
// single-stream page, and the multi-view page plays it and publishes its
// own camera (Chromium's fake 640x480 camera).
//
// Run: node --test test/browser/multi.test.mjs (after
// scripts/test-browser.sh installed Chromium and playwright-core).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Pages, Server, launchBrowser, outDir, sleep, waitFor } from './harness.mjs';

const SECONDS = 4;

// framesEncoded and the report's timestamp (ms) of a page's video sender.
function encoded(reports) {
  const v = reports.filter((r) => r.kind === 'video');
  if (v.length === 0) return null;
  return { frames: Math.max(...v.map((r) => r.framesEncoded || 0)), at: Math.max(...v.map((r) => r.timestamp)) };
}

describe('multi-view stats in Chromium', { timeout: 90000 }, () => {
  let server;
  let browser;
  let pages;

  before(async () => {
    server = await Server.start();
    browser = await launchBrowser();
    pages = new Pages(browser, server);
  });

  after(async () => {
    if (pages) await pages.close();
    if (browser) await browser.close();
    if (server) await server.close();
  });

  test('each tile shows its publisher\'s frame rate (±20 %) and a bit rate', { timeout: 80000 }, async () => {
    const pub = await pages.open('/?stream=mv-cam&mode=publish&autostart=1&codec=h264', 'publish mv-cam');
    await waitFor(pub, 'mv-cam publisher connected', () => window.sluice.state === 'connected');
    const page = await pages.open('/multi.html?streams=mv-cam&publish=mv-me&codec=vp8', 'multi');
    // From the first overlay with rates: a bit rate above 0.
    const first = {};
    for (const name of ['mv-me', 'mv-cam']) {
      first[name] = await waitFor(page, name + ' tile with rates', (n) => {
        const t = window.sluice.tile(n);
        return t && t.state === 'connected' && t.stats && t.stats.fps !== null && t.stats;
      }, name);
    }
    for (const [name, s] of Object.entries(first)) {
      assert.ok(s.kbps > 0, `${name}: the first overlay with rates shows ${s.kbps} kb/s`);
    }
    for (const name of ['mv-me', 'mv-cam']) {
      await waitFor(page, name + ' tile decoding', (n) => window.sluice.tile(n).framesDecoded > 30, name);
    }

    // The truth: the publishers' framesEncoded over SECONDS; the tiles'
    // fps (what the overlays show), read each second meanwhile.
    const truth = async () => ({
      'mv-cam': encoded(await pub.evaluate(() => window.sluice.rawStats('outbound-rtp'))),
      'mv-me': encoded(await page.evaluate(() => window.sluice.rawStats('mv-me', 'outbound-rtp'))),
    });
    const t0 = await truth();
    const shown = { 'mv-cam': [], 'mv-me': [] };
    for (let i = 0; i < SECONDS; i++) {
      await sleep(1000);
      for (const name of Object.keys(shown)) {
        shown[name].push(await page.evaluate((n) => window.sluice.tile(n).stats.fps, name));
      }
    }
    const t1 = await truth();
    for (const name of Object.keys(shown)) {
      const real = (t1[name].frames - t0[name].frames) / ((t1[name].at - t0[name].at) / 1000);
      const fps = shown[name].reduce((a, b) => a + b, 0) / shown[name].length;
      console.log(`multi-view ${name}: the tile shows ${fps.toFixed(1)} fps (${shown[name].map((x) => x.toFixed(1)).join(', ')}), ` +
        `its publisher sends ${real.toFixed(1)} fps`);
      assert.ok(real > 5, `${name}: the publisher sends ${real} fps`);
      assert.ok(Math.abs(fps - real) <= 0.2 * real, `${name}: the tile shows ${fps} fps, the publisher sends ${real} fps`);
    }
    // The overlay's text is the summary's.
    const text = await page.evaluate(() => document.querySelector('figure[data-stream="mv-cam"] .stats').textContent);
    assert.match(text, /\d+ fps/);
    assert.match(text, /[\d.]+ (kb|Mb)\/s/);
    await page.screenshot({ path: path.join(outDir, 'multi-stats.png') });
    assert.deepEqual(pages.problems, []);
  });
});
