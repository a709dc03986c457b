// Browser tests: the embedded pages in headless Chromium against the real
// sluice binary on loopback. Chromium's fake camera (640x480 test pattern)
// and microphone are published with WHIP from the page and played with WHEP
// by a second page. The tests run in order and share the server, the
// browser and some pages; each says what it leaves running.
//
// Run: ./scripts/test-browser.sh (installs what is missing), or
// `node --test test/browser/sluice.test.mjs` once it is installed.
// Screenshots, the server log and timings.txt (time to first frame) go to
// test/browser/out/.
//
// LL-HLS: the page's HLS mode plays a camera published from another page
// through hls.js (installed into web/vendor/ by scripts/web-deps.sh).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Pages, Server, TOKEN, Timings, launchBrowser, outDir, waitFor } from './harness.mjs';

const TEST_TIMEOUT = 60000;

describe('sluice pages in Chromium', { timeout: 200000 }, () => {
  let server;
  let browser;
  let pages;
  const timings = new Timings();
  const publishers = {}; // stream → page, left publishing for later tests
  let h264Player; // kept for the reconnect test
  const viewerLoss = {}; // stream → the viewer's video packetsLost

  before(async () => {
    server = await Server.start();
    browser = await launchBrowser();
    pages = new Pages(browser, server);
  });

  after(async () => {
    timings.write();
    if (pages) await pages.close();
    if (browser) await browser.close();
    if (server) await server.close();
  });

  // publish opens a publishing page and waits until it is connected.
  async function publish(stream, query = '') {
    const page = await pages.open(`/?stream=${stream}&mode=publish&autostart=1${query}`, 'publish ' + stream);
    await waitFor(page, stream + ' publisher connected', () => window.sluice.state === 'connected');
    return page;
  }

  // play opens a playing page, presses Start and checks what a viewer must
  // get: growing decoded frames of the published size, audio, the codec.
  async function playAndCheck(stream, publisher, wantCodec, query = '') {
    const page = await pages.open(`/?stream=${stream}&mode=play${query}`, 'play ' + stream);
    const clickedAt = Date.now();
    await page.click('#start');
    await waitFor(page, 'a first decoded frame', () => window.sluice.framesDecoded() > 0);
    const seenAt = Date.now();
    await waitFor(page, '10 decoded frames', () => window.sluice.framesDecoded() >= 10);
    const tenAt = Date.now();
    const ttff = await waitFor(page, 'ttffMs', () => window.sluice.ttffMs);
    timings.add(`TTFF ${stream} (${wantCodec}): ${Math.round(ttff)} ms in the page (Start to first frame presented); ` +
      `seen by the test: first frame ${seenAt - clickedAt} ms, 10th frame ${tenAt - clickedAt} ms after the click`);

    const f0 = await page.evaluate(() => window.sluice.framesDecoded());
    await waitFor(page, 'framesDecoded to grow by 20', (n) => window.sluice.framesDecoded() >= n + 20, f0);

    const sent = await publisher.evaluate(() => window.sluice.trackSettings());
    assert.ok(sent && sent.width > 0 && sent.height > 0, 'publisher track settings: ' + JSON.stringify(sent));
    // The encoder may start small while bandwidth estimation ramps up.
    const size = await waitFor(page, `the player to show ${sent.width}x${sent.height}`, (want) => {
      const s = window.sluice.videoSize();
      return s.width === want.width && s.height === want.height && s;
    }, { width: sent.width, height: sent.height });
    assert.deepEqual(size, { width: sent.width, height: sent.height });

    const stats = await waitFor(page, 'audio and video stats', () => {
      const s = window.sluice.stats;
      return s && s.audioPackets > 0 && s.audioSamples > 0 && s.framesDecoded > 0 && s.videoCodec && s;
    });
    assert.equal(stats.videoCodec.toLowerCase(), 'video/' + wantCodec.toLowerCase());
    assert.equal(stats.audioCodec.toLowerCase(), 'audio/opus');
    assert.ok(stats.rttMs !== null, 'RTT in stats: ' + JSON.stringify(stats));
    // The overlay shows what the stats say.
    await waitFor(page, 'the stats overlay', () => {
      const el = document.getElementById('stats');
      return !el.hidden && /\d+×\d+/.test(el.textContent) && /RTT/.test(el.textContent);
    });
    // Loopback loses nothing: a gap here is the server's (a freeze until the
    // next keyframe follows it).
    const v = (await page.evaluate(() => window.sluice.rawStats('inbound-rtp'))).find((r) => r.kind === 'video');
    viewerLoss[stream] = v.packetsLost;
    timings.add(`${stream} viewer video: packetsLost=${v.packetsLost} nackCount=${v.nackCount} ` +
      `pliCount=${v.pliCount} keyFramesDecoded=${v.keyFramesDecoded} framesDecoded=${v.framesDecoded}`);
    const shot = path.join(outDir, `play-${wantCodec.toLowerCase()}.png`);
    await page.screenshot({ path: shot });
    timings.add(`screenshot: ${shot}`);
    return page;
  }

  test('the pages load under their CSP with no error', { timeout: TEST_TIMEOUT }, async () => {
    for (const p of ['/', '/multi.html']) {
      const page = await pages.open(p, 'load ' + p);
      await waitFor(page, 'window.sluice', () => window.sluice && window.sluice.state === 'idle');
      const resp = await page.request.get(server.url + p);
      assert.equal(resp.headers()['content-security-policy'], "default-src 'self'; img-src 'self' data:; media-src 'self' blob:");
      await page.close();
    }
    assert.deepEqual(pages.problems, []);
  });

  test('H264: publish the camera, play it in another page', { timeout: TEST_TIMEOUT }, async () => {
    const pub = await publish('h264cam', '&codec=h264&bitrate=900');
    publishers.h264cam = pub;
    const enc = await pub.evaluate(() => window.sluice.senderParameters());
    assert.equal(enc[0].maxBitrate, 900000, 'maxBitrate from ?bitrate=900');
    await pub.evaluate(() => window.sluice.setBitrate(1200));
    assert.equal((await pub.evaluate(() => window.sluice.senderParameters()))[0].maxBitrate, 1200000);
    h264Player = await playAndCheck('h264cam', pub, 'H264');
  });

  // Chromium sends receiver reports at once, so sluice detaches the player
  // from pion early (see README, How it works): from then on sluice itself
  // answers Chromium's consent checks (about every 5 s; without answers
  // Chromium drops the connection after 30 s) and reads its RTCP.
  test('the H264 player keeps playing after sluice detached it from pion', { timeout: TEST_TIMEOUT }, async () => {
    const session = await waitFor(h264Player, 'the player\'s session detached', async () => {
      const r = await fetch('/v1/sessions');
      const { sessions } = await r.json();
      const s = sessions.find((x) => x.kind === 'whep' && x.stream === 'h264cam');
      return s && s.detached && s.state === 'connected' && s.rtp_path === 'direct' && s;
    });
    assert.ok(session.detached);
    const pair = async () => (await h264Player.evaluate(() => window.sluice.rawStats('candidate-pair')))
      .find((p) => p.nominated && p.state === 'succeeded');
    const before = await pair();
    assert.ok(before, 'a nominated candidate pair');
    // A consent check answered after detaching: by sluice.
    const later = await waitFor(h264Player, 'a consent response after detaching', async (n) => {
      const p = (await window.sluice.rawStats('candidate-pair')).find((x) => x.nominated && x.state === 'succeeded');
      return p && p.responsesReceived > n && p;
    }, before.responsesReceived);
    assert.ok(later.responsesReceived > before.responsesReceived);
    const f0 = await h264Player.evaluate(() => window.sluice.framesDecoded());
    await waitFor(h264Player, 'framesDecoded to grow by 30', (n) => window.sluice.framesDecoded() >= n + 30, f0);
    timings.add(`detached H264 player: consent responses ${before.responsesReceived} -> ${later.responsesReceived}`);
  });

  test('VP8: publish the camera, play it in another page', { timeout: TEST_TIMEOUT }, async () => {
    const pub = await publish('vp8cam', '&codec=vp8');
    publishers.vp8cam = pub;
    const player = await playAndCheck('vp8cam', pub, 'VP8');
    await player.close();
  });

  // The server takes publishers' padding out of the sequence at ingest, so
  // on loopback a viewer sees no gap.
  test('viewers see no sequence gaps on loopback', () => {
    // Negative packetsLost counts duplicates (RFC 3550 §6.4.1), not gaps.
    for (const [stream, lost] of Object.entries(viewerLoss)) {
      assert.ok(lost <= 0, `${stream}: the viewer lost ${lost} packets`);
    }
    assert.deepEqual(Object.keys(viewerLoss).sort(), ['h264cam', 'vp8cam']);
  });

  test('multi-view plays several streams and publishes its own camera', { timeout: TEST_TIMEOUT }, async () => {
    const page = await pages.open('/multi.html?streams=h264cam,vp8cam&publish=conf-me&codec=vp8', 'multi');
    for (const name of ['conf-me', 'h264cam', 'vp8cam']) {
      // The own tile counts its local preview's frames: connected matters too.
      await waitFor(page, name + ' tile connected and decoding', (n) => {
        const t = window.sluice.tile(n);
        return t && t.state === 'connected' && t.framesDecoded > 10 && t.width > 0;
      }, name);
    }
    assert.deepEqual(await page.evaluate(() => window.sluice.names()), ['conf-me', 'h264cam', 'vp8cam']);
    // Another viewer of the multi-view page's own stream sees it too.
    const viewer = await pages.open('/multi.html?streams=conf-me', 'multi viewer');
    await waitFor(viewer, 'conf-me decoding elsewhere', () => {
      const t = window.sluice.tile('conf-me');
      return t && t.framesDecoded > 10;
    });
    await viewer.close();
    const shot = path.join(outDir, 'multi.png');
    await page.screenshot({ path: shot });
    timings.add(`screenshot: ${shot}`);
    await page.close();
    await publishers.vp8cam.close();
    delete publishers.vp8cam;
  });

  test('the player reconnects when the publisher leaves and comes back', { timeout: TEST_TIMEOUT }, async () => {
    const pub = publishers.h264cam;
    const player = h264Player;
    assert.ok(pub && player, 'needs the H264 test\'s pages');
    await player.evaluate(() => { window.notReloaded = true; });
    await pub.evaluate(() => window.sluice.stop());
    await waitFor(player, 'the player to show reconnecting', () => window.sluice.state === 'reconnecting');
    await waitFor(player, 'the reconnecting note', () => /retrying/.test(document.getElementById('note').textContent));
    const f0 = await player.evaluate(() => window.sluice.framesDecoded());

    const restartedAt = Date.now();
    await pub.evaluate(() => window.sluice.start());
    await waitFor(pub, 'the publisher connected again', () => window.sluice.state === 'connected');
    await waitFor(player, 'the player connected again', () => window.sluice.state === 'connected');
    await waitFor(player, 'frames decoded again', (n) => window.sluice.framesDecoded() >= n + 20, f0);
    const back = Date.now() - restartedAt;
    const r = await player.evaluate(() => ({
      reconnects: window.sluice.reconnects,
      recoveryMs: window.sluice.recoveryMs,
      notReloaded: window.notReloaded,
      events: window.sluice.events,
    }));
    const t0 = r.events.length ? r.events[0].ms : 0;
    timings.add('player states: ' + r.events.map((e) => `+${e.ms - t0}ms ${e.state}${e.why ? ' (' + e.why + ')' : ''}`).join(', '));
    assert.equal(r.notReloaded, true, 'the page was not reloaded');
    assert.ok(r.reconnects >= 1, 'reconnects: ' + r.reconnects);
    timings.add(`reconnect: frames again ${back} ms after the publisher restarted ` +
      `(${Math.round(r.recoveryMs)} ms from the loss to the first new frame, back-off included)`);
    const shot = path.join(outDir, 'play-reconnected.png');
    await player.screenshot({ path: shot });
    await player.close();
    await pub.close();
    delete publishers.h264cam;
  });

  test('the player reconnects after the network drops', { timeout: TEST_TIMEOUT }, async () => {
    const pub = await publish('netcam');
    const player = await pages.open('/?stream=netcam&mode=play&autostart=1', 'play netcam');
    await waitFor(player, 'frames', () => window.sluice.framesDecoded() > 10);
    // Frozen, the server answers nothing: no media, no STUN, no HTTP. The
    // player notices (ICE disconnected, or no media for a while) and retries.
    const frozenAt = Date.now();
    server.freeze();
    try {
      // About 5 s (no media) plus a stats poll; more on a loaded machine.
      await waitFor(player, 'the player to notice', () => window.sluice.state === 'reconnecting', undefined, 15000);
    } finally {
      server.thaw();
    }
    const noticed = Date.now() - frozenAt;
    // The publisher's ICE rides out a few seconds of silence; if it did not,
    // publish again: what is tested here is the player.
    const pubOK = await waitFor(pub, 'the publisher back', () => window.sluice.state === 'connected', undefined, 4000)
      .catch(() => false);
    if (!pubOK) await pub.evaluate(() => window.sluice.start());
    const f0 = await player.evaluate(() => window.sluice.framesDecoded());
    const thawedAt = Date.now();
    await waitFor(player, 'frames decoded again', (n) => window.sluice.framesDecoded() >= n + 20, f0);
    timings.add(`network drop: noticed after ${noticed} ms, frames again ${Date.now() - thawedAt} ms after the network came back` +
      (pubOK ? '' : ' (the publisher had to publish again)'));
    await player.close();
    await pub.close();
  });

  test('tokens from ?token= are sent as Bearer', { timeout: TEST_TIMEOUT }, async () => {
    const pub = await publish('secret-cam', '&token=' + TOKEN);
    const denied = await pages.open('/?stream=secret-cam&mode=play&autostart=1', 'play without token');
    await waitFor(denied, 'the player without a token to fail', () => window.sluice.state === 'error');
    assert.match(await denied.evaluate(() => window.sluice.lastError), /^HTTP 401/);
    await denied.close();
    const player = await pages.open('/?stream=secret-cam&mode=play&autostart=1&token=' + TOKEN, 'play with token');
    await waitFor(player, 'frames with the token', () => window.sluice.framesDecoded() > 10);
    await player.close();
    await pub.close();
  });

  test('LL-HLS: the page plays a published stream with hls.js', { timeout: TEST_TIMEOUT }, async () => {
    const pub = await publish('hlscam', '&codec=h264');
    const player = await pages.open('/?stream=hlscam&mode=hls&autostart=1', 'hls hlscam');
    const startedAt = Date.now();
    // The first playlist request starts the muxer and waits for a segment.
    await waitFor(player, 'HLS playing', () => window.sluice.state === 'connected', undefined, 30000);
    const playingAt = Date.now();
    const a = await player.evaluate(() => window.sluice.hls());
    assert.equal(a.engine, 'hls.js', 'hls.js missing from web/vendor (scripts/web-deps.sh)?');
    const b = await waitFor(player, 'currentTime to advance 3 s', (t0) => {
      const h = window.sluice.hls();
      return h.currentTime > t0 + 3 && h;
    }, a.currentTime, 20000);
    const sent = await pub.evaluate(() => window.sluice.trackSettings());
    assert.ok(b.videoWidth > 0 && b.videoHeight > 0, 'video size ' + JSON.stringify(b));
    assert.equal(b.videoWidth / b.videoHeight, sent.width / sent.height, 'aspect ratio of what was published');
    assert.ok(await player.evaluate(() => window.sluice.framesDecoded()) > 30, 'frames decoded');
    timings.add(`LL-HLS hlscam: playing ${playingAt - startedAt} ms after the page opened, ` +
      `${b.videoWidth}x${b.videoHeight}, hls.js latency ${b.latency === null ? '?' : b.latency.toFixed(2) + ' s'}`);
    const shot = path.join(outDir, 'play-hls.png');
    await player.screenshot({ path: shot });
    timings.add(`screenshot: ${shot}`);
    await player.close();
    await pub.close();
  });

  test('no page had an uncaught error or a CSP violation', () => {
    assert.deepEqual(pages.problems, []);
  });
});
