// Browser tests of the codecs beyond H264 and VP8: Chromium publishes its
// fake camera in VP9, then in AV1, with WHIP from the page (the page keeps
// only that codec in its offer, as a browser restricted to it would), and a
// second page plays each with WHEP: decoded frames of the published size,
// the codec as negotiated, and the publisher's codec as the server saw it.
//
// Run: `node --test test/browser/codecs.test.mjs` once ./scripts/test-browser.sh
// has installed what it needs.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Pages, Server, launchBrowser, waitFor } from './harness.mjs';

const TEST_TIMEOUT = 60000;

describe('VP9 and AV1 in Chromium', { timeout: 150000 }, () => {
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

  for (const codec of ['VP9', 'AV1']) {
    test(`${codec}: publish the camera, play it in another page`, { timeout: TEST_TIMEOUT }, async () => {
      const stream = codec.toLowerCase() + 'cam';
      const pub = await pages.open(`/?stream=${stream}&mode=publish&autostart=1&codec=${codec.toLowerCase()}&audio=0`, 'publish ' + stream);
      await waitFor(pub, stream + ' publisher connected', () => window.sluice.state === 'connected');

      // The server took the publisher's codec as its track.
      const tracks = await waitFor(pub, 'the stream\'s tracks', async (s) => {
        const r = await fetch('/v1/streams');
        const { streams } = await r.json();
        const st = streams.find((x) => x.name === s);
        return st && st.tracks && st.tracks.length > 0 && st.tracks;
      }, stream);
      const video = tracks.find((t) => t.kind === 'video');
      assert.ok(video, 'a video track: ' + JSON.stringify(tracks));
      assert.match(JSON.stringify(video), new RegExp(codec, 'i'));

      const page = await pages.open(`/?stream=${stream}&mode=play`, 'play ' + stream);
      await page.click('#start');
      await waitFor(page, 'a first decoded frame', () => window.sluice.framesDecoded() > 0);
      const f0 = await page.evaluate(() => window.sluice.framesDecoded());
      await waitFor(page, 'framesDecoded to grow by 30', (n) => window.sluice.framesDecoded() >= n + 30, f0);
      const sent = await pub.evaluate(() => window.sluice.trackSettings());
      const size = await waitFor(page, `the player to show ${sent.width}x${sent.height}`, (want) => {
        const s = window.sluice.videoSize();
        return s.width === want.width && s.height === want.height && s;
      }, { width: sent.width, height: sent.height });
      assert.deepEqual(size, { width: sent.width, height: sent.height });
      const stats = await waitFor(page, 'video stats', () => {
        const s = window.sluice.stats;
        return s && s.framesDecoded > 0 && s.videoCodec && s;
      });
      assert.equal(stats.videoCodec.toLowerCase(), 'video/' + codec.toLowerCase());
      const v = (await page.evaluate(() => window.sluice.rawStats('inbound-rtp'))).find((r) => r.kind === 'video');
      console.log(`${stream} viewer video: packetsLost=${v.packetsLost} keyFramesDecoded=${v.keyFramesDecoded} framesDecoded=${v.framesDecoded}`);
      await page.close();
      await pub.close();
    });
  }

  test('no page error', () => {
    assert.deepEqual(pages.problems, []);
  });
});
