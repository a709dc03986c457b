// Browser test of simulcast: Chromium publishes its fake camera at 1280x720
// as three VP8 (then H264) layers (q, h, f: a quarter, half and full size, RID header
// extensions, no a=ssrc, RTX per layer), and players in other pages get one
// layer each: pinned low by ?layer=, moved to high through the JSON API, or
// chosen by the server from their congestion feedback (TWCC) on loopback.
//
// Run: ./scripts/test-browser.sh, or `node --test test/browser/simulcast.test.mjs`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Pages, Server, Timings, launchBrowser, sleep, waitFor } from './harness.mjs';

const TEST_TIMEOUT = 60000;

describe('simulcast in Chromium', { timeout: 120000 }, () => {
  let server;
  let browser;
  let pages;
  const timings = new Timings();

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

  async function api(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(server.url + path, init);
    const text = await r.text();
    assert.equal(r.status, 200, `${method} ${path}: ${r.status} ${text}`);
    return JSON.parse(text);
  }

  // layers polls the stream until its video track lists n layers that send.
  async function layers(stream, n) {
    const deadline = Date.now() + 30000;
    let last;
    while (Date.now() < deadline) {
      const r = await fetch(server.url + '/v1/streams/' + stream);
      if (r.ok) {
        last = await r.json();
        const video = last.tracks.find((t) => t.kind === 'video');
        const sending = video && video.layers ? video.layers.filter((l) => l.bitrate_bps > 0) : [];
        if (sending.length >= n) return sending;
      }
      await sleep(250);
    }
    throw new Error(`the stream never had ${n} layers sending: ${JSON.stringify(last)}`);
  }

  async function viewerID(stream, known) {
    const { sessions } = await api('GET', '/v1/sessions');
    const s = sessions.find((x) => x.kind === 'whep' && x.stream === stream && !known.includes(x.id));
    assert.ok(s, 'the player\'s session in ' + JSON.stringify(sessions));
    return s.id;
  }

  async function size(page, what, pred, arg) {
    return waitFor(page, what, pred, arg, 30000);
  }

  for (const codec of ['vp8', 'h264']) {
  const sc = 'sc-' + codec;
  test(codec + ': a viewer gets one layer: pinned low, moved high, and chosen by bandwidth', { timeout: TEST_TIMEOUT }, async () => {
    const pub = await pages.open(`/?stream=${sc}&mode=publish&autostart=1&codec=${codec}&simulcast=1&audio=0`, 'publish ' + sc);
    await waitFor(pub, sc + ' publisher connected', () => window.sluice.state === 'connected');
    const enc = await pub.evaluate(() => window.sluice.senderParameters());
    assert.deepEqual(enc.map((e) => e.rid), ['q', 'h', 'f']);
    const sending = await layers(sc, 3);
    timings.add(codec + ' simulcast layers as the server ranks them: ' + sending.map((l) => `${l.rid} ${Math.round(l.bitrate_bps / 1000)} kbit/s`).join(', '));
    assert.deepEqual(sending.map((l) => l.rid), ['q', 'h', 'f']);

    const known = [];
    const low = await pages.open(`/?stream=${sc}&mode=play&layer=low`, 'play ' + sc + ' low');
    await low.click('#start');
    await waitFor(low, 'frames', () => window.sluice.framesDecoded() > 10);
    const id = await viewerID(sc, known);
    known.push(id);
    const small = await size(low, 'a picture', () => { const s = window.sluice.videoSize(); return s.width > 0 && s; });
    let st = await api('GET', `/v1/sessions/${id}/layer`);
    assert.equal(st.current, 'q');
    assert.equal(st.pinned, 'low');

    st = await api('POST', `/v1/sessions/${id}/layer`, { layer: 'high' });
    assert.equal(st.pinned, 'high');
    const big = await size(low, 'a picture at least twice as wide', (w) => {
      const s = window.sluice.videoSize();
      return s.width >= 2 * w && s;
    }, small.width);
    timings.add(`${codec} simulcast: pinned low ${small.width}x${small.height}, then high ${big.width}x${big.height}`);
    // The switch neither froze the picture nor left a gap in the RTP
    // sequence (packetsLost would count it).
    const f0 = await low.evaluate(() => window.sluice.framesDecoded());
    await waitFor(low, 'frames after the switch', (n) => window.sluice.framesDecoded() >= n + 20, f0);
    const v = (await low.evaluate(() => window.sluice.rawStats('inbound-rtp'))).find((r) => r.kind === 'video');
    timings.add(`${codec} simulcast viewer: packetsLost=${v.packetsLost} keyFramesDecoded=${v.keyFramesDecoded} freezeCount=${v.freezeCount} framesDecoded=${v.framesDecoded}`);
    assert.ok(v.packetsLost <= 0, 'packets lost across the switch: ' + v.packetsLost);
    assert.equal((await api('GET', `/v1/sessions/${id}/layer`)).current, 'f');

    // Without a pin, loopback carries everything: the server's estimate
    // from Chromium's TWCC feedback climbs to the full layer.
    const auto = await pages.open(`/?stream=${sc}&mode=play`, 'play ' + sc + ' auto');
    await auto.click('#start');
    await waitFor(auto, 'frames', () => window.sluice.framesDecoded() > 10);
    const autoID = await viewerID(sc, known);
    await size(auto, 'the full layer', (w) => window.sluice.videoSize().width === w, big.width);
    st = await api('GET', `/v1/sessions/${autoID}/layer`);
    timings.add(`${codec} simulcast auto viewer: ${JSON.stringify(st)}`);
    assert.equal(st.current, 'f');
    assert.equal(st.pinned, 'auto');
    assert.ok(st.estimate_bps > 0);
    assert.deepEqual(pages.problems, []);
    for (const p of [pub, low, auto]) await p.close();
  });
  }
});
