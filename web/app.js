// sluice page: publish the camera with WHIP (RFC 9725) or play a stream with
// WHEP. Plain script, no build step; every request goes to this page's origin.
//
// Query parameters: stream=NAME, mode=publish|play, token=TOKEN, autostart=1.
//
// Test hooks on window.sluice:
//   state          'idle' | 'starting' | an RTCPeerConnection connectionState
//                  ('connecting', 'connected', 'disconnected', 'failed', ...) |
//                  'stopped' | 'error'
//   lastError      '' or the last error shown, e.g. 'HTTP 404: no such stream'
//   framesDecoded() video frames the <video> element has shown so far
//   start(), stop() the same as the buttons
'use strict';

(() => {
  const GATHER_TIMEOUT_MS = 2000; // send the offer with what ICE has by then

  const $ = (id) => document.getElementById(id);
  const form = $('form');
  const streamInput = $('stream');
  const tokenInput = $('token');
  const startButton = $('start');
  const stopButton = $('stop');
  const unmuteButton = $('unmute');
  const stateOut = $('state');
  const errorOut = $('error');
  const noteOut = $('note');
  const video = $('video');

  const sluice = {
    state: 'idle',
    lastError: '',
    framesDecoded() {
      if (typeof video.getVideoPlaybackQuality !== 'function') return 0;
      return video.getVideoPlaybackQuality().totalVideoFrames || 0;
    },
    start: () => start(),
    stop: () => stop(),
  };
  window.sluice = sluice;

  // The running session, or null. A session is
  // {mode, token, pc, media, resource, closed}.
  let session = null;

  function setState(state) {
    sluice.state = state;
    stateOut.textContent = state;
  }

  function showError(message) {
    sluice.lastError = message;
    errorOut.textContent = message;
  }

  function showNote(message) {
    noteOut.textContent = message;
  }

  function setRunning(running, mode) {
    startButton.disabled = running;
    stopButton.disabled = !running;
    for (const el of form.querySelectorAll('input')) el.disabled = running;
    unmuteButton.hidden = !(running && mode === 'play');
  }

  function authHeaders(token) {
    return token ? { Authorization: 'Bearer ' + token } : {};
  }

  // Thrown after Stop was pressed mid-start; never shown to the user.
  class Aborted extends Error {}

  function checkOpen(s) {
    if (s.closed) throw new Aborted('stopped');
  }

  async function httpError(resp) {
    let body = '';
    try {
      body = (await resp.text()).trim().slice(0, 500);
    } catch (_) {
      // The status alone still says what happened.
    }
    return new Error('HTTP ' + resp.status + ': ' + (body || resp.statusText));
  }

  async function start() {
    if (session) await stop();
    const mode = form.elements.mode.value === 'play' ? 'play' : 'publish';
    const name = streamInput.value.trim() || 'live';
    const s = {
      mode,
      token: tokenInput.value.trim(),
      pc: null,
      media: null,
      resource: null,
      closed: false,
    };
    session = s;
    showError('');
    showNote('');
    setRunning(true, mode);
    setState('starting');
    try {
      if (mode === 'play') await play(s, name);
      else await publish(s, name);
    } catch (err) {
      const aborted = s.closed;
      try {
        await end(s);
      } catch (_) {
        // The first error is the one worth showing.
      }
      if (aborted) return;
      showError(err.message || String(err));
      setState('error');
      setRunning(false);
    }
  }

  async function stop() {
    const s = session;
    if (!s) return;
    try {
      await end(s);
    } catch (err) {
      showError('stop: ' + (err.message || String(err)));
    }
    setState('stopped');
    setRunning(false);
  }

  // end releases what a session holds: the peer connection, the camera, and
  // the resource on the server. Calling it twice is harmless; a resource
  // that arrives after the first call is deleted by the second.
  async function end(s, keepalive = false) {
    s.closed = true;
    if (session === s) session = null;
    if (s.pc) s.pc.close();
    if (s.media) {
      for (const track of s.media.getTracks()) track.stop();
      if (video.srcObject === s.media) video.srcObject = null;
    }
    const resource = s.resource;
    if (!resource) return;
    s.resource = null;
    // RFC 9725 §4.3: DELETE on the session URL ends the session.
    const resp = await fetch(resource, {
      method: 'DELETE',
      headers: authHeaders(s.token),
      keepalive,
    });
    if (!resp.ok && resp.status !== 404) throw await httpError(resp);
  }

  async function publish(s, name) {
    s.media = await openCamera();
    checkOpen(s);
    video.muted = true; // local preview: never play our own microphone
    video.srcObject = s.media;
    video.play().catch(() => {});

    const pc = newPeerConnection(s);
    const [videoTrack] = s.media.getVideoTracks();
    const [audioTrack] = s.media.getAudioTracks();
    const streams = [s.media];
    const vt = pc.addTransceiver(videoTrack || 'video', { direction: 'sendonly', streams });
    pc.addTransceiver(audioTrack || 'audio', { direction: 'sendonly', streams });
    preferH264(vt, window.RTCRtpSender);
    await negotiate(s, 'whip', name);
  }

  async function play(s, name) {
    const pc = newPeerConnection(s);
    const vt = pc.addTransceiver('video', { direction: 'recvonly' });
    const at = pc.addTransceiver('audio', { direction: 'recvonly' });
    preferH264(vt, window.RTCRtpReceiver);
    // The receiver tracks exist from the start and unmute when media flows,
    // so the element can be wired up before negotiation.
    s.media = new MediaStream([vt.receiver.track, at.receiver.track]);
    video.muted = true; // browsers only autoplay muted video
    setMuteLabel();
    video.srcObject = s.media;
    video.play().catch(() => {});
    await negotiate(s, 'whep', name);
  }

  async function openCamera() {
    const md = navigator.mediaDevices;
    if (!md || !md.getUserMedia) {
      showNote('The camera needs a secure context: open this page on localhost or over HTTPS.');
      throw new Error('getUserMedia is not available here');
    }
    try {
      return await md.getUserMedia({ video: true, audio: true });
    } catch (err) {
      if (err.name === 'NotAllowedError' || err.name === 'SecurityError') {
        showNote('Camera and microphone access was denied. Allow it in the browser\'s site settings and press Start again, or switch to Play.');
        throw new Error('camera/microphone: ' + err.name + ': ' + err.message);
      }
      // A device is missing or busy: publish whichever one works.
      for (const only of ['video', 'audio']) {
        try {
          const media = await md.getUserMedia({ [only]: true });
          showNote('Publishing ' + only + ' only (' + err.name + ': ' + err.message + ').');
          return media;
        } catch (_) {
          // Try the next kind.
        }
      }
      throw new Error('camera/microphone: ' + err.name + ': ' + err.message);
    }
  }

  function newPeerConnection(s) {
    const pc = new RTCPeerConnection();
    s.pc = pc;
    pc.addEventListener('connectionstatechange', () => {
      if (session !== s) return;
      setState(pc.connectionState);
      if (pc.connectionState === 'failed') {
        showError('connection failed: no ICE/DTLS path to the server');
      }
    });
    return pc;
  }

  // preferH264 puts H264 first (packetization-mode=1, Constrained Baseline
  // before other profiles) and keeps the rest as fallbacks, where the
  // browser lets a page choose.
  function preferH264(transceiver, kind) {
    if (!kind || typeof kind.getCapabilities !== 'function') return;
    if (typeof transceiver.setCodecPreferences !== 'function') return;
    const caps = kind.getCapabilities('video');
    if (!caps) return;
    const rank = (c) => {
      if (c.mimeType.toLowerCase() !== 'video/h264') return 3;
      const fmtp = c.sdpFmtpLine || '';
      if (!fmtp.includes('packetization-mode=1')) return 2;
      return fmtp.includes('profile-level-id=42e01f') ? 0 : 1;
    };
    const codecs = caps.codecs.slice().sort((a, b) => rank(a) - rank(b));
    if (codecs.length === 0 || rank(codecs[0]) === 3) return; // no H264 here
    try {
      transceiver.setCodecPreferences(codecs);
    } catch (err) {
      console.warn('sluice: setCodecPreferences:', err);
    }
  }

  // waitForGathering resolves when ICE gathering completes or after ms,
  // whichever comes first: no trickle ICE, so the offer carries candidates.
  function waitForGathering(pc, ms) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      };
      const check = () => {
        if (pc.iceGatheringState === 'complete') done();
      };
      const timer = setTimeout(done, ms);
      pc.addEventListener('icegatheringstatechange', check);
    });
  }

  async function negotiate(s, kind, name) {
    const pc = s.pc;
    await pc.setLocalDescription(await pc.createOffer());
    await waitForGathering(pc, GATHER_TIMEOUT_MS);
    checkOpen(s);

    // Relative to the page, so a reverse proxy's path prefix is kept.
    const endpoint = new URL(kind + '/' + encodeURIComponent(name), location.href);
    const resp = await fetch(endpoint, {
      method: 'POST',
      headers: { ...authHeaders(s.token), 'Content-Type': 'application/sdp' },
      body: pc.localDescription.sdp,
    });
    if (resp.status !== 201) throw await httpError(resp);
    // RFC 9725 §4.2: Location names the session; resolve it against the
    // URL that answered (a redirect may have moved us).
    const loc = resp.headers.get('Location');
    if (loc) {
      s.resource = new URL(loc, resp.url || endpoint).href;
    } else {
      showNote('The server sent no Location header: Stop cannot end the session on the server.');
    }
    checkOpen(s);
    const answer = await resp.text();
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    checkOpen(s);
  }

  function setMuteLabel() {
    unmuteButton.textContent = video.muted ? 'Unmute' : 'Mute';
    unmuteButton.setAttribute('aria-pressed', String(!video.muted));
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    start();
  });
  stopButton.addEventListener('click', () => stop());
  unmuteButton.addEventListener('click', () => {
    video.muted = !video.muted;
    setMuteLabel();
    video.play().catch(() => {});
  });
  // Leaving the page ends the session on the server too; keepalive lets the
  // DELETE outlive the page.
  window.addEventListener('pagehide', () => {
    if (session) end(session, true).catch(() => {});
  });

  const params = new URLSearchParams(location.search);
  if (params.get('stream')) streamInput.value = params.get('stream');
  if (params.get('token')) tokenInput.value = params.get('token');
  const mode = params.get('mode');
  if (mode === 'play' || mode === 'publish') form.elements.mode.value = mode;
  if (params.get('autostart') === '1') start();
})();
