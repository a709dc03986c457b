// An RTMP publisher played by Chromium: ffmpeg publishes H264 Constrained
// Baseline and AAC (a 440 Hz sine) to sluice's RTMP server as an encoder
// like OBS does (-f flv rtmp://…/live/NAME); Chromium plays the stream
// with WHEP. The video is packetized by sluice's frame writer, the AAC is
// transcoded to Opus (tap.Transcoders); the page decodes the picture, and
// a WebAudio AnalyserNode on the received audio track hears the tone:
// its loudest frequency bin is near 440 Hz and its level is well above
// silence.
//
// Needs ffmpeg (libx264, aac) besides what scripts/test-browser.sh
// installs. Run: `node --test test/browser/rtmp.test.mjs`.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Pages, Server, launchBrowser, outDir, sleep, waitFor } from './harness.mjs';

// rtmpAddr reads the RTMP listener's address (the harness binds port 0)
// from the server's log line "rtmp listening addr=…".
async function rtmpAddr() {
  const log = path.join(outDir, 'sluice.log');
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    const m = fs.existsSync(log) && fs.readFileSync(log, 'utf8').match(/msg="rtmp listening" addr=(127\.0\.0\.1:\d+)/);
    if (m) return m[1];
    await sleep(100);
  }
  throw new Error('no "rtmp listening" line in ' + log + ' within 10 s');
}

describe('an RTMP publisher in Chromium', { timeout: 90000 }, () => {
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
    if (ffmpeg && ffmpeg.exitCode === null) {
      ffmpeg.kill('SIGTERM');
      await new Promise((resolve) => ffmpeg.once('exit', resolve));
    }
    if (pages) await pages.close();
    if (browser) await browser.close();
    if (server) await server.close();
  });

  test('ffmpeg H264 + AAC 440 Hz over RTMP, played by WHEP with sound', { timeout: 60000 }, async (t) => {
    const addr = await rtmpAddr();
    ffmpeg = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re',
      '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '50',
      '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-profile:v', 'baseline',
      '-g', '25', '-pix_fmt', 'yuv420p',
      '-c:a', 'aac', '-b:a', '96k', '-ac', '2',
      '-f', 'flv', 'rtmp://' + addr + '/live/rtmpbrowser'], { stdio: ['ignore', 'ignore', 'pipe'] });
    ffmpeg.stderr.on('data', (d) => { ffmpegErr += d; });
    // The stream is up once the API lists it with its RTMP publisher.
    const deadline = Date.now() + 15000;
    let info = null;
    while (Date.now() < deadline && ffmpeg.exitCode === null) {
      const r = await fetch(server.url + '/v1/streams/rtmpbrowser');
      if (r.ok) {
        info = await r.json();
        if (info.publisher && info.tracks.some((t) => t.codec.toLowerCase() === 'opus')) break;
      }
      await sleep(200);
    }
    assert.ok(info && info.publisher, 'stream rtmpbrowser not published within 15 s: ' + JSON.stringify(info) + ' ' + ffmpegErr);
    assert.equal(info.publisher.kind, 'rtmp-publish');
    const codecs = info.tracks.map((t) => t.codec.toLowerCase());
    assert.ok(codecs.includes('h264') && codecs.includes('opus'),
      'tracks ' + codecs.join(',') + ': want H264 and the AAC derived as Opus');

    const page = await pages.open('/?stream=rtmpbrowser&mode=play', 'play rtmpbrowser');
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
      return s && s.audioPackets > 0 && s.audioSamples > 0 && s.framesDecoded > 0 && s.audioCodec && s;
    });
    assert.equal(stats.videoCodec.toLowerCase(), 'video/h264');
    assert.equal(stats.audioCodec.toLowerCase(), 'audio/opus');

    // Listen to the received audio track: 2 s of frequency and level
    // readings from an AnalyserNode.
    const heard = await page.evaluate(async () => {
      const video = document.querySelector('video');
      const track = video.srcObject && video.srcObject.getAudioTracks()[0];
      if (!track) return { error: 'no audio track on the <video> element' };
      const ctx = new AudioContext();
      await ctx.resume();
      const src = ctx.createMediaStreamSource(new MediaStream([track]));
      const an = ctx.createAnalyser();
      an.fftSize = 4096;
      src.connect(an);
      const freq = new Float32Array(an.frequencyBinCount);
      const wave = new Float32Array(an.fftSize);
      let peakHz = 0;
      let peakDb = -Infinity;
      let rms = 0;
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 100));
        an.getFloatFrequencyData(freq);
        for (let b = 1; b < freq.length; b++) {
          if (freq[b] > peakDb) {
            peakDb = freq[b];
            peakHz = (b * ctx.sampleRate) / an.fftSize;
          }
        }
        an.getFloatTimeDomainData(wave);
        let sum = 0;
        for (const v of wave) sum += v * v;
        rms = Math.max(rms, Math.sqrt(sum / wave.length));
      }
      await ctx.close();
      return { peakHz, peakDb, rms, state: ctx.state };
    });
    assert.ok(!heard.error, heard.error);
    t.diagnostic('heard: loudest ' + heard.peakHz.toFixed(1) + ' Hz at ' + heard.peakDb.toFixed(1) + ' dB, RMS ' + heard.rms.toFixed(3));
    // ffmpeg's sine source is at 1/8 of full scale (RMS about 0.09).
    assert.ok(heard.rms > 0.02, 'received audio RMS ' + heard.rms + ': silence, want the tone');
    assert.ok(Math.abs(heard.peakHz - 440) < 30, 'loudest frequency ' + heard.peakHz + ' Hz, want 440 Hz');
    assert.deepEqual(pages.problems, []);
  });
});
