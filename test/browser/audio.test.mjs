// Browser test of AAC audio: ffmpeg publishes VP8 and AAC (its sine, 440
// Hz at 1/8 full scale: -21 dBFS RMS) over RTSP, as a camera does; the page
// plays the stream over WHEP, where sluice has transcoded the AAC to Opus,
// and WebAudio (an AnalyserNode on the remote audio track) hears the tone:
// AAC→Opus end to end in a browser.
//
// Where the codec libraries or ffmpeg are missing the test is skipped
// (and fails instead under SLUICE_TEST_REQUIRE_TRANSCODE, which
// scripts/test.sh sets once it has installed them).
//
// Run: node --test test/browser/audio.test.mjs (after
// scripts/test-browser.sh installed Chromium and playwright-core).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Pages, Server, launchBrowser, outDir, sleep, waitFor } from './harness.mjs';

const STREAM = 'aaccam';

describe('AAC audio in Chromium', { timeout: 90000 }, () => {
  let server;
  let browser;
  let pages;
  let ffmpeg;
  let ffmpegErr = '';

  before(async () => {
    server = await Server.start();
    browser = await launchBrowser();
    pages = new Pages(browser, server);
  });

  after(async () => {
    if (ffmpeg && ffmpeg.exitCode === null) ffmpeg.kill('SIGTERM');
    if (pages) await pages.close();
    if (browser) await browser.close();
    if (server) await server.close();
  });

  // streamInfo is GET /v1/streams/{stream}, or null before it is live.
  async function streamInfo() {
    const r = await fetch(server.url + '/v1/streams/' + STREAM);
    return r.ok ? r.json() : null;
  }

  test('a stream published with AAC over RTSP plays a 440 Hz tone in the page', { timeout: 80000 }, async (t) => {
    if (spawnSync('ffmpeg', ['-version']).status !== 0) {
      if (process.env.SLUICE_TEST_REQUIRE_TRANSCODE) assert.fail('ffmpeg not found');
      t.skip('ffmpeg not found (apt-get install ffmpeg)');
      return;
    }
    // VP8 video: x264's baseline is constrained baseline flagged 42 c0 ..,
    // which Chromium's offer (42 e0 .., 42 00 ..) does not name literally
    // (H264 profiles matched by meaning: issue 21).
    ffmpeg = spawn('ffmpeg', ['-v', 'error', '-re',
      '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '60', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '300k', '-g', '25',
      '-c:a', 'aac', '-b:a', '96k', '-f', 'rtsp', '-rtsp_transport', 'tcp', `rtsp://${server.rtsp}/${STREAM}`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
    ffmpeg.stderr.on('data', (d) => { ffmpegErr += d; });

    // The AAC track and the Opus track sluice derives from it.
    let info = null;
    const deadline = Date.now() + 20000;
    while (!(info && info.tracks.length >= 2) && Date.now() < deadline) {
      await sleep(100);
      info = await streamInfo();
    }
    assert.ok(info && info.tracks.length >= 2, 'the stream never went live with two tracks (ffmpeg: ' + ffmpegErr + ')');
    const aac = info.tracks.find((tr) => tr.codec === 'MPEG4-GENERIC');
    assert.ok(aac, 'no AAC track: ' + JSON.stringify(info.tracks));
    if (aac.transcode.startsWith('unavailable')) {
      if (process.env.SLUICE_TEST_REQUIRE_TRANSCODE) assert.fail('transcoding ' + aac.transcode);
      t.skip('transcoding ' + aac.transcode);
      return;
    }
    assert.ok(aac.transcode.split(', ').includes('opus'), 'AAC transcoded to ' + aac.transcode + ', want opus among them');

    const page = await pages.open(`/?stream=${STREAM}&mode=play&autostart=1`, 'play ' + STREAM);
    await waitFor(page, '10 decoded frames', () => window.sluice.framesDecoded() >= 10);
    const stats = await waitFor(page, 'Opus audio in the stats', () => {
      const s = window.sluice.stats;
      return s && s.audioPackets > 50 && s.audioSamples > 0 && s;
    });
    assert.equal(stats.audioCodec.toLowerCase(), 'audio/opus');

    // WebAudio on the remote track: the dominant frequency and the level,
    // over 2 s (the median of 10 readings).
    const heard = await page.evaluate(async () => {
      const track = document.getElementById('video').srcObject.getAudioTracks()[0];
      if (!track) return { error: 'no remote audio track' };
      const ctx = new AudioContext();
      await ctx.resume();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 8192;
      analyser.smoothingTimeConstant = 0;
      ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
      const freq = new Float32Array(analyser.frequencyBinCount);
      const wave = new Float32Array(analyser.fftSize);
      const readings = [];
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 200));
        analyser.getFloatFrequencyData(freq);
        analyser.getFloatTimeDomainData(wave);
        let peak = 0;
        for (let b = 1; b < freq.length; b++) if (freq[b] > freq[peak]) peak = b;
        let sum = 0;
        for (const x of wave) sum += x * x;
        readings.push({ hz: peak * ctx.sampleRate / analyser.fftSize, db: 10 * Math.log10(sum / wave.length + 1e-20) });
      }
      const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
      const out = {
        state: ctx.state,
        sampleRate: ctx.sampleRate,
        hz: median(readings.map((r) => r.hz)),
        db: median(readings.map((r) => r.db)),
        readings,
      };
      await ctx.close();
      return out;
    });
    console.log(`AAC→Opus in Chromium: ${heard.hz?.toFixed(1)} Hz at ${heard.db?.toFixed(1)} dBFS RMS ` +
      `(AudioContext ${heard.state}, ${heard.sampleRate} Hz; the source: 440 Hz at -21 dBFS)`);
    assert.ok(!heard.error, heard.error);
    // One FFT bin is 5.4 Hz at 44.1 kHz, 5.9 Hz at 48 kHz.
    assert.ok(Math.abs(heard.hz - 440) <= 12, 'dominant frequency ' + heard.hz + ' Hz: ' + JSON.stringify(heard.readings));
    assert.ok(heard.db > -30 && heard.db < -12, 'level ' + heard.db + ' dBFS RMS: ' + JSON.stringify(heard.readings));
    await page.screenshot({ path: path.join(outDir, 'play-aac.png') });
    assert.deepEqual(pages.problems, []);
  });
});
