// Browser test of the console page: a camera published from one page
// (Chromium's fake 640x480 camera, WHIP) is listed on /console with a
// thumbnail (its snapshot), plays live from there (WHEP) with a frame rate
// that matches the publisher's, and plays from its recordings timeline
// (/playback/ in a <video>). The console's screenshot goes to docs/.
//
// Run: node --test test/browser/console.test.mjs (after
// scripts/test-browser.sh installed Chromium and playwright-core).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Pages, Server, launchBrowser, outDir, repoRoot, sleep, waitFor } from './harness.mjs';

const RECORD = `
record:
  rules:
    - streams: "console-*"
      dir: "{dir}/rec"
      segment: 4s
`;

describe('console page in Chromium', { timeout: 120000 }, () => {
  let server;
  let browser;
  let pages;

  before(async () => {
    server = await Server.start(RECORD);
    browser = await launchBrowser();
    pages = new Pages(browser, server);
  });

  after(async () => {
    if (pages) await pages.close();
    if (browser) await browser.close();
    if (server) await server.close();
  });

  test('lists a live stream with a thumbnail, plays it and its recording', { timeout: 100000 }, async () => {
    const stream = 'console-cam';
    const pub = await pages.open(`/?stream=${stream}&mode=publish&autostart=1`, 'publish');
    await waitFor(pub, 'publisher connected', () => window.sluice.state === 'connected');
    const sent = await pub.evaluate(() => window.sluice.trackSettings());

    const page = await pages.open('/console', 'console');
    await waitFor(page, 'the stream listed', (s) => window.sluice.streams().includes(s), stream);
    // The thumbnail is the snapshot: a JPEG of the published size.
    const card = await waitFor(page, 'a thumbnail of the published size', (want) => {
      const c = window.sluice.card(want.stream);
      return c && c.thumbWidth === want.width && c.thumbHeight === want.height && c;
    }, { stream, width: sent.width, height: sent.height }, 30000);
    assert.equal(card.recording, true, 'the card says recording');
    assert.match(card.source, /^WHIP from 127\.0\.0\.1:\d+$/, 'the card says how the stream comes in');

    // Live over WHEP; the player's frame rate within 20 % of the
    // publisher's, both measured over the same seconds.
    await page.evaluate((s) => window.sluice.playLive(s), stream);
    await waitFor(page, '30 decoded live frames', () => (window.sluice.live()?.framesDecoded || 0) >= 30);
    await sleep(3000);
    const liveFps = await page.evaluate(() => window.sluice.live().stats.fps);
    const pubFps = await pub.evaluate(() => window.sluice.stats.fps);
    console.log(`console: live player ${liveFps.toFixed(1)} fps, publisher ${pubFps.toFixed(1)} fps`);
    assert.ok(pubFps > 5, 'publisher fps ' + pubFps);
    assert.ok(Math.abs(liveFps - pubFps) <= 0.2 * pubFps, `player ${liveFps} fps, publisher ${pubFps} fps`);

    // The recordings timeline: a run of several seconds, played from its
    // start (the fraction of the last 24 h where it begins).
    const recs = await waitFor(page, 'a recording of 5 s on the timeline', (s) => {
      const c = window.sluice.card(s);
      return c && c.recordings.length > 0 && c.recordings[c.recordings.length - 1].duration_s >= 5 && c.recordings;
    }, stream, 30000);
    await page.screenshot({ path: path.join(repoRoot, 'docs', 'console.png') });
    await page.screenshot({ path: path.join(outDir, 'console.png') });
    const seg = recs[recs.length - 1];
    const fraction = 1 - (Date.now() - Date.parse(seg.start)) / (24 * 3600 * 1000);
    const url = await page.evaluate(([s, f]) => window.sluice.playRecording(s, f), [stream, fraction]);
    assert.match(url, /\/playback\/console-cam\.mp4\?start=/);
    const played = await waitFor(page, 'recorded frames decoded', () => {
      const r = window.sluice.recorded();
      return r.error === 0 && r.framesDecoded >= 20 && r;
    }, null, 30000);
    assert.ok(played.duration > 3, 'recording duration ' + played.duration);
    await page.screenshot({ path: path.join(outDir, 'console-playback.png') });
    assert.deepEqual(pages.problems, []);
  });
});
