// Harness for the browser tests: the real sluice binary on loopback and
// headless Chromium (Debian's package) driven by playwright-core.
//
// Environment:
//   BROWSER_TEST_BIN  a built sluice binary (default: go build one)
//   BROWSER_TEST_OUT  where screenshots, logs and timings go
//                     (default test/browser/out)
//   CHROMIUM          the browser (default /usr/bin/chromium)
// (Not SLUICE_*: sluice refuses SLUICE_ variables it does not know, and the
// server here gets none of them.)

import { spawn, execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const outDir = path.resolve(process.env.BROWSER_TEST_OUT || path.join(here, 'out'));

// A token the test server's auth accepts for streams named secret-*.
export const TOKEN = 'browser-test-token-0123456789';

const CONFIG = `
auth:
  default: allow
  rules:
    - streams: "secret-*"
      mode: static
      tokens:
        - {token: "${TOKEN}", actions: [publish, read], streams: ["secret-*"]}
`;

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

function freeUDPPort() {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', reject);
    sock.bind(0, '127.0.0.1', () => {
      const { port } = sock.address();
      sock.close(() => resolve(port));
    });
  });
}

// serverEnv is this process's environment without SLUICE_* variables, so
// that a developer's settings cannot change the server under test.
function serverEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLUICE_')));
}

function buildSluice(dir) {
  if (process.env.BROWSER_TEST_BIN) return path.resolve(process.env.BROWSER_TEST_BIN);
  const bin = path.join(dir, 'sluice');
  execFileSync('go', ['build', '-o', bin, './cmd/sluice'], { cwd: repoRoot, stdio: 'inherit' });
  return bin;
}

// Server is a running sluice process; url is its HTTP base URL.
export class Server {
  // extra is more YAML for the configuration; {dir} in it is the
  // server's own temporary directory.
  static async start(extra = '') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-browser-'));
    const bin = buildSluice(dir);
    const config = path.join(dir, 'sluice.yml');
    fs.writeFileSync(config, CONFIG + extra.replaceAll('{dir}', dir));
    fs.mkdirSync(outDir, { recursive: true });
    let lastErr;
    // A port picked free may be taken before sluice binds it: try again.
    for (let i = 0; i < 3; i++) {
      const s = new Server(dir, bin, config, await freeTCPPort(), await freeUDPPort(), await freeTCPPort());
      try {
        await s.waitHealthy();
        return s;
      } catch (err) {
        lastErr = err;
        await s.stop();
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
    throw lastErr;
  }

  // rtsp is the RTSP listener's host:port (TCP only: RTSP's UDP ports are
  // a fixed pair, taken by whoever runs alongside).
  constructor(dir, bin, config, httpPort, udpPort, rtspPort) {
    this.dir = dir;
    this.url = 'http://127.0.0.1:' + httpPort;
    this.rtsp = '127.0.0.1:' + rtspPort;
    this.log = fs.createWriteStream(path.join(outDir, 'sluice.log'));
    this.proc = spawn(bin, [
      '-config', config,
      '-http.listen', '127.0.0.1:' + httpPort,
      '-rtmp.listen', '127.0.0.1:0', '-srt.listen', '127.0.0.1:0',
      '-webrtc.udp_port', String(udpPort),
      '-webrtc.listen_ips', '127.0.0.1',
      '-rtsp.listen', this.rtsp,
      '-rtsp.udp_rtp_port', '0',
      '-rtsp.udp_rtcp_port', '0',
    ], { stdio: ['ignore', 'pipe', 'pipe'], env: serverEnv() });
    this.proc.stdout.pipe(this.log, { end: false });
    this.proc.stderr.pipe(this.log, { end: false });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, sig) => resolve(code ?? sig)));
  }

  async waitHealthy() {
    const deadline = Date.now() + 15000;
    let exited = null;
    this.exited.then((c) => { exited = c; });
    while (Date.now() < deadline) {
      if (exited !== null) throw new Error('sluice exited (' + exited + '); see ' + path.join(outDir, 'sluice.log'));
      try {
        const r = await fetch(this.url + '/healthz');
        if (r.ok) return;
      } catch (_) {
        // Not listening yet.
      }
      await sleep(100);
    }
    throw new Error('sluice not healthy after 15 s');
  }

  // freeze stops the process (SIGSTOP): to clients it is as if the network
  // dropped every packet, HTTP included, until thaw.
  freeze() {
    this.proc.kill('SIGSTOP');
  }

  thaw() {
    this.proc.kill('SIGCONT');
  }

  async close() {
    this.thaw();
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 6000);
      await this.exited;
      clearTimeout(timer);
    }
    this.log.end();
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// launchBrowser starts headless Chromium with a fake camera (a 640x480
// test pattern) and microphone (a beep). playwright gives it a fresh
// profile (--user-data-dir) of its own and deletes it on close.
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

// Pages opens pages that record what would make a test wrong but not fail
// it on its own: uncaught exceptions and CSP violations.
export class Pages {
  constructor(browser, server) {
    this.browser = browser;
    this.server = server;
    this.problems = [];
    this.context = null;
  }

  async open(pathAndQuery, label) {
    if (!this.context) {
      this.context = await this.browser.newContext({ viewport: { width: 960, height: 800 } });
      await this.context.grantPermissions(['camera', 'microphone'], { origin: this.server.url });
    }
    const page = await this.context.newPage();
    page.on('pageerror', (err) => this.problems.push(label + ': uncaught ' + err.message));
    page.on('console', (msg) => {
      if (/Content.Security.Policy/i.test(msg.text())) this.problems.push(label + ': ' + msg.text());
    });
    await page.goto(this.server.url + pathAndQuery);
    return page;
  }

  async close() {
    if (this.context) await this.context.close();
  }
}

// waitFor polls fn(arg) in the page until it returns a truthy value, which it
// returns; on timeout it throws with what, the last value and the page's state.
export async function waitFor(page, what, fn, arg, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await page.evaluate(fn, arg);
    if (last) return last;
    if (Date.now() > deadline) break;
    await sleep(100);
  }
  const state = await page.evaluate(() => {
    const s = window.sluice;
    return s ? { state: s.state, lastError: s.lastError, note: document.getElementById('note')?.textContent } : null;
  }).catch((e) => String(e));
  throw new Error('timed out after ' + timeoutMs + ' ms waiting for ' + what +
    ' (last value ' + JSON.stringify(last) + ', page ' + JSON.stringify(state) + ')');
}

// Timings collects the numbers a person wants to see after a run.
export class Timings {
  constructor() {
    this.lines = [];
  }

  add(line) {
    this.lines.push(line);
    console.log(line);
  }

  write() {
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(path.join(outDir, 'timings.txt'), this.lines.join('\n') + '\n');
  }
}
