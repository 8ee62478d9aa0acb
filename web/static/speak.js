// speak.js -- the speaker page, /speak: sign in with a token, start a
// session, stream the microphone, and steer the broadcast.
//
// The microphone goes through an AudioWorklet (pcm-worklet.js) that hands
// back 100 ms of 16 kHz PCM at a time; each chunk is one binary WebSocket
// frame. Buttons show the broadcast state the server reports, never the
// state a click hoped for: a pause that did not reach the server must not
// look like one.
//
// The transcript (WebVTT or text, any language that was listened to) is
// fetched on a socket of its own (transcript.js), so it can be downloaded
// while the session runs and from the "Session ended" panel afterwards,
// while this page still knows the code and the token.

import {
  $,
  LANGUAGES,
  SOURCE_LANGUAGES,
  TolkConnection,
  describeError,
  fillLanguageSelect,
  formatDuration,
  keepScreenOn,
  setBanner,
} from '/static/tolk.js';
import { CaptionView } from '/static/captions.js';
import { qrSvg } from '/static/qr.js';
import { fetchTranscript, saveText } from '/static/transcript.js';

const TOKEN_KEY = 'tolk.token';
const PENDING_MS = 5000; // a control the server did not answer in this time is given back

const ui = {
  status: $('status'),
  banner: $('banner'),
  signin: $('signin'),
  signinForm: $('signin-form'),
  token: $('token'),
  setup: $('setup'),
  source: $('source'),
  start: $('start'),
  signout: $('signout'),
  live: $('live'),
  code: $('session-code'),
  link: $('listener-link'),
  copy: $('copy'),
  qr: $('qr'),
  pause: $('pause'),
  mute: $('mute'),
  end: $('end'),
  volume: $('volume'),
  volumeOut: $('volume-out'),
  meter: $('meter'),
  listeners: $('listeners'),
  languages: $('languages'),
  duration: $('duration'),
  captions: $('captions'),
  ended: $('ended'),
  endedText: $('ended-text'),
  endedTranscript: $('ended-transcript'),
  again: $('again'),
  transcript: $('transcript'),
  transcriptLang: $('transcript-lang'),
  transcriptVtt: $('transcript-vtt'),
  transcriptText: $('transcript-text'),
  transcriptStatus: $('transcript-status'),
};
const view = new CaptionView(ui.captions);

const state = {
  token: null,
  sessionId: null,
  conn: null,
  mic: null,
  phase: 'idle', // idle | connecting | live | reconnecting | ended
  broadcast: { isPaused: false, isMuted: false, volume: 1 },
  hold: false, // a pause or mute was clicked: stop sending before the server confirms
  pending: { pause: 0, mute: 0 }, // timers of unanswered clicks
  durationBase: null, // [sessionDuration seconds, Date.now() when received]
  source: null, // the session's source language
  transcriptBusy: false,
};
let bannerTimer = 0;

function banner(text, tone = 'info', hideAfterMs = 0) {
  clearTimeout(bannerTimer);
  setBanner(ui.banner, text, tone);
  if (hideAfterMs) bannerTimer = setTimeout(() => setBanner(ui.banner, ''), hideAfterMs);
}

function show(section) {
  for (const s of ['signin', 'setup', 'live', 'ended']) ui[s].hidden = s !== section;
}

function showStatus() {
  const b = state.broadcast;
  let [text, tone] = ['Live', 'ok'];
  if (state.phase === 'idle') [text, tone] = [state.token ? 'Ready' : 'Signed out', 'warn'];
  else if (state.phase === 'connecting') [text, tone] = ['Connecting…', 'warn'];
  else if (state.phase === 'reconnecting') [text, tone] = ['Reconnecting…', 'bad'];
  else if (state.phase === 'ended') [text, tone] = ['Ended', 'bad'];
  else if (b.isPaused) [text, tone] = ['Paused', 'warn'];
  else if (b.isMuted) [text, tone] = ['Muted', 'warn'];
  ui.status.textContent = text;
  ui.status.dataset.tone = tone;
}

// ------------------------------------------------------------ token

/** A token in the URL is moved into this tab's storage and taken out of
 *  the address bar, so it does not end up in history or a screenshot. */
function loadToken() {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl.trim());
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function forgetToken(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  ui.token.value = '';
  show('signin');
  if (message) banner(message, 'bad');
  showStatus();
  ui.token.focus();
}

// ------------------------------------------------------------ microphone

/** Open the microphone and the worklet; onFrame gets { pcm, peak } ten
 *  times a second. Throws with a message meant for people. */
async function startMic(onFrame) {
  if (!window.isSecureContext || !navigator.mediaDevices || !window.AudioWorkletNode) {
    throw new Error(
      'This browser only gives the microphone to secure pages: open this page as ' +
        `http://localhost:${location.port || 80}/speak on this machine, or through HTTPS.`,
    );
  }
  let stream;
  try {
    // the recogniser wants the voice as it is, but steady in level
    stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        channelCount: 1,
        echoCancellation: false,
        noiseSuppression: true,
        autoGainControl: true,
      },
    });
  } catch (err) {
    if (err.name === 'NotAllowedError') throw new Error('Microphone access was refused.');
    if (err.name === 'NotFoundError') throw new Error('No microphone was found.');
    throw new Error(`The microphone could not be opened (${err.name}).`);
  }
  const ctx = new AudioContext();
  try {
    await ctx.audioWorklet.addModule('/static/pcm-worklet.js');
    const source = ctx.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(ctx, 'pcm16k', {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      channelCount: 1,
      channelCountMode: 'explicit',
      channelInterpretation: 'speakers',
    });
    node.port.onmessage = (ev) => onFrame(ev.data);
    source.connect(node);
    node.connect(ctx.destination); // silent, but keeps the node pulled by the graph
    await ctx.resume();
  } catch (err) {
    stream.getTracks().forEach((t) => t.stop());
    ctx.close();
    throw new Error(`Audio processing could not start (${err.message}).`);
  }
  for (const track of stream.getAudioTracks()) {
    track.addEventListener('ended', () => {
      if (state.phase !== 'ended')
        banner('The microphone stopped (unplugged or taken away).', 'bad');
    });
  }
  return {
    stop() {
      stream.getTracks().forEach((t) => t.stop());
      ctx.close();
    },
  };
}

function audioFlows() {
  const b = state.broadcast;
  return !state.hold && !b.isPaused && !b.isMuted;
}

function onFrame({ pcm, peak }) {
  ui.meter.value = peak;
  if (state.conn && audioFlows()) state.conn.sendBinary(pcm);
}

function stopMic() {
  if (state.mic) state.mic.stop();
  state.mic = null;
  ui.meter.value = 0;
}

// ------------------------------------------------------------ session UI

/** The server's listenerUrl comes from public_url; when that is a loopback
 *  address but this page was reached by another name, phones could not use
 *  it, so the address this page came from is offered instead. */
function listenerUrl(fromServer, id) {
  const loopback = (h) => h === 'localhost' || h.startsWith('127.') || h === '[::1]';
  try {
    const u = new URL(fromServer);
    if (!(loopback(u.hostname) && !loopback(location.hostname))) return u.href;
  } catch {
    /* fall through */
  }
  return `${location.origin}/listen/${encodeURIComponent(id)}`;
}

function showSession(msg) {
  state.sessionId = msg.sessionId;
  setSource(msg.sourceLanguage);
  const url = listenerUrl(msg.listenerUrl, msg.sessionId);
  ui.code.textContent = msg.sessionId;
  ui.link.href = url;
  ui.link.textContent = url;
  ui.qr.textContent = '';
  try {
    ui.qr.append(qrSvg(url, `QR code of the listener link ${url}`));
  } catch {
    ui.qr.textContent = 'The link is too long for a QR code.';
  }
  document.title = `tolk: ${msg.sessionId} (speaker)`;
  show('live');
  view.setPlaceholder('Start speaking: what the recogniser understands appears here.');
}

/** confirms: b answers a control (broadcastPaused ...), so the buttons held
 *  for it are released; a status push carries the state but answers nothing. */
function setBroadcast(b, confirms) {
  if (!b || typeof b !== 'object') return;
  state.broadcast = { ...state.broadcast, ...b };
  if (confirms) {
    state.hold = false;
    for (const key of ['pause', 'mute']) {
      clearTimeout(state.pending[key]);
      state.pending[key] = 0;
    }
  }
  renderControls();
}

function renderControls() {
  const b = state.broadcast;
  const live = state.phase === 'live';
  ui.pause.textContent = b.isPaused ? 'Resume' : 'Pause';
  ui.pause.setAttribute('aria-pressed', String(!!b.isPaused));
  ui.mute.textContent = b.isMuted ? 'Unmute' : 'Mute';
  ui.mute.setAttribute('aria-pressed', String(!!b.isMuted));
  ui.pause.disabled = !live || !!state.pending.pause;
  ui.mute.disabled = !live || !!state.pending.mute;
  ui.volume.disabled = !live;
  ui.end.disabled = state.phase === 'ended';
  if (typeof b.volume === 'number') {
    ui.volume.value = String(Math.round(b.volume * 100));
    ui.volumeOut.textContent = `${Math.round(b.volume * 100)} %`;
  }
  showStatus();
}

function showStats(msg) {
  if (typeof msg.listenerCount === 'number') ui.listeners.textContent = String(msg.listenerCount);
  if (msg.languageDistribution && typeof msg.languageDistribution === 'object') {
    const parts = Object.entries(msg.languageDistribution)
      .sort((a, b) => b[1] - a[1])
      .map(([code, n]) => `${LANGUAGES[code] || code} ${n}`);
    ui.languages.textContent = parts.length ? parts.join(' · ') : 'none yet';
    addTranscriptLanguages(Object.keys(msg.languageDistribution));
  }
  if (typeof msg.sessionDuration === 'number')
    state.durationBase = [msg.sessionDuration, Date.now()];
}

function tickDuration() {
  if (!state.durationBase || state.phase === 'ended') return;
  const [base, at] = state.durationBase;
  ui.duration.textContent = formatDuration(base + (Date.now() - at) / 1000);
}

/** Send a broadcast control and hold the button until the server answers. */
function control(key, action) {
  if (!state.conn || !state.conn.send({ action })) return;
  if (action === 'pauseBroadcast' || action === 'muteBroadcast') state.hold = true;
  clearTimeout(state.pending[key]);
  state.pending[key] = setTimeout(() => {
    state.pending[key] = 0;
    state.hold = false;
    renderControls();
    banner('The server did not answer; the state shown is the last one it reported.', 'warn', 6000);
  }, PENDING_MS);
  renderControls();
}

// ------------------------------------------------------------ transcript

function setSource(lang) {
  if (typeof lang !== 'string' || !lang) return;
  const first = state.source === null;
  state.source = lang;
  addTranscriptLanguages([lang]);
  if (first) ui.transcriptLang.value = lang;
}

/** Offer more languages in the transcript picker, keeping the choice. */
function addTranscriptLanguages(codes) {
  const select = ui.transcriptLang;
  const have = new Set([...select.options].map((o) => o.value));
  for (const code of codes) {
    if (typeof code !== 'string' || !/^[a-z]{2}$/.test(code) || have.has(code)) continue;
    have.add(code);
    const opt = document.createElement('option');
    opt.value = code;
    opt.textContent = `${LANGUAGES[code] || code} (${code})`;
    select.append(opt);
  }
  if (!select.value && state.source) select.value = state.source;
}

function transcriptStatus(text, tone = 'info') {
  ui.transcriptStatus.textContent = text;
  ui.transcriptStatus.hidden = !text;
  ui.transcriptStatus.dataset.tone = tone;
}

function transcriptRefusal(err) {
  switch (err.code) {
    case 'SESSION_NOT_FOUND':
      return 'There is no transcript in that language (nothing was said in it, or it has expired).';
    case 'INVALID_PARAMETERS':
    case 'INVALID_ACTION':
      return `The server cannot give this transcript: ${err.message || err.code}.`;
    case 'TIMEOUT':
    case 'NETWORK':
      return err.message;
    default:
      return describeError(err);
  }
}

/** Fetch the transcript in the picked language and save it as a file. */
async function downloadTranscript(format) {
  if (state.transcriptBusy || !state.sessionId || !state.token) return;
  const language = ui.transcriptLang.value || state.source || 'en';
  state.transcriptBusy = true;
  ui.transcriptVtt.disabled = ui.transcriptText.disabled = true;
  transcriptStatus('Fetching the transcript…');
  try {
    const t = await fetchTranscript({
      sessionId: state.sessionId,
      token: state.token,
      language,
      format,
    });
    addTranscriptLanguages(t.languages);
    const name = `${state.sessionId}-${t.language || language}.${format === 'vtt' ? 'vtt' : 'txt'}`;
    saveText(
      t.text,
      name,
      format === 'vtt' ? 'text/vtt;charset=utf-8' : 'text/plain;charset=utf-8',
    );
    transcriptStatus(`Saved ${name}.`, 'ok');
  } catch (err) {
    transcriptStatus(transcriptRefusal(err), 'bad');
  } finally {
    state.transcriptBusy = false;
    ui.transcriptVtt.disabled = ui.transcriptText.disabled = false;
  }
}

// ------------------------------------------------------------ ending

function endSession(text) {
  state.phase = 'ended';
  stopMic();
  if (state.conn) state.conn.stop(1000);
  for (const key of ['pause', 'mute']) clearTimeout(state.pending[key]);
  ui.endedText.textContent = text;
  // the code and the token are still here: the transcript stays on offer
  if (state.sessionId) ui.endedTranscript.append(ui.transcript);
  if (!state.transcriptBusy) transcriptStatus('');
  ui.endedTranscript.hidden = !state.sessionId;
  show('ended');
  banner('');
  renderControls();
}

// ------------------------------------------------------------ messages

const ENDED_REASONS = {
  endSession: 'You ended the session.',
  speakerEnded: 'The session ended when your connection closed.',
  speakerTimeout: 'The connection was not back within the grace period, so the session ended.',
  maxDuration: 'The session reached its maximum length.',
};

function onMessage(msg) {
  switch (msg.type) {
    case 'sessionCreated':
      showSession(msg);
      state.conn.send({ action: 'getSessionStatus' });
      break;
    case 'connectionRefreshComplete':
      setSource(msg.sourceLanguage);
      setBroadcast(msg.broadcastState, true);
      showStats(msg);
      state.conn.send({ action: 'getSessionStatus' });
      break;
    case 'sessionStatus':
      showStats(msg);
      setBroadcast(msg.broadcastState, false);
      break;
    case 'broadcastPaused':
    case 'broadcastResumed':
    case 'broadcastMuted':
    case 'broadcastUnmuted':
    case 'volumeChanged':
    case 'speakerStateChanged':
      setBroadcast(msg.broadcastState, true);
      break;
    case 'caption':
      view.add(msg);
      break;
    case 'sessionEnded':
      endSession(ENDED_REASONS[msg.reason] || 'The session has ended.');
      break;
    case 'error':
      onError(msg);
      break;
    default:
      break;
  }
}

function onError(msg) {
  const key = {
    pauseBroadcast: 'pause',
    resumeBroadcast: 'pause',
    muteBroadcast: 'mute',
    unmuteBroadcast: 'mute',
  }[msg.action];
  if (key) {
    clearTimeout(state.pending[key]);
    state.pending[key] = 0;
    state.hold = false;
    renderControls();
  }
  // the status is also pushed unasked; a refused query changes nothing
  if (msg.action === 'getSessionStatus') return;
  if (msg.action === 'sendAudio' && msg.code === 'SERVICE_UNAVAILABLE') {
    banner(
      'Speech recognition is not available right now (no audio worker); retrying as you speak.',
      'warn',
      5000,
    );
    return;
  }
  if (msg.status >= 500) {
    banner('The server could not do that just now (no worker available); try again.', 'warn', 8000);
    return;
  }
  banner(describeError(msg), 'bad', 8000);
}

function onState(phase, info) {
  if (state.phase === 'ended') return;
  if (phase === 'live') {
    state.phase = 'live';
    if (info.resumed && !info.handover) {
      banner('Reconnected. Your listeners were told you are back.', 'ok', 5000);
    } else if (!info.handover) {
      banner('');
    }
  } else if (phase === 'connecting') {
    state.phase = 'connecting';
  } else if (phase === 'reconnecting') {
    state.phase = state.sessionId ? 'reconnecting' : 'connecting';
    const secs = Math.max(1, Math.round((info.delayMs || 0) / 1000));
    if (state.sessionId) {
      banner(
        info.delayMs
          ? `Connection lost. Reconnecting in ${secs} s (attempt ${info.attempt}); the session is kept for a grace period and your listeners are waiting.`
          : 'Reconnecting…',
        'bad',
      );
    } else if (info.delayMs) {
      banner(
        `${describeError(info.error) || 'Could not reach the server.'} Retrying in ${secs} s…`,
        'warn',
      );
    }
  } else if (phase === 'failed') {
    const err = info.error;
    if (err.code === 'UNAUTHENTICATED') {
      stopMic();
      state.phase = 'idle';
      forgetToken(describeError(err));
      return;
    }
    if (err.code === 'SESSION_NOT_FOUND' && state.sessionId) {
      endSession('Your connection was not back in time and the session has ended.');
      return;
    }
    stopMic();
    state.phase = 'idle';
    show('setup');
    banner(describeError(err), 'bad');
  } else if (phase === 'ended') {
    endSession('The session has ended.');
    return;
  }
  renderControls();
}

// ------------------------------------------------------------ actions

async function start() {
  ui.start.disabled = true;
  banner('Opening the microphone…');
  try {
    state.mic = await startMic(onFrame);
  } catch (err) {
    banner(err.message, 'bad');
    ui.start.disabled = false;
    return;
  }
  banner('');
  const source = ui.source.value;
  state.phase = 'connecting';
  state.sessionId = null;
  state.conn = new TolkConnection({
    connectParams: () => ({
      action: 'createSession',
      sourceLanguage: source,
      qualityTier: 'standard',
      token: state.token,
    }),
    refreshParams: () => ({
      action: 'refreshConnection',
      role: 'speaker',
      sessionId: state.sessionId,
      token: state.token,
    }),
    onMessage,
    onState,
  });
  state.conn.start();
  ui.start.disabled = false;
  keepScreenOn();
  renderControls();
}

async function copyLink() {
  try {
    await navigator.clipboard.writeText(ui.link.href);
    banner('Link copied.', 'ok', 2500);
  } catch {
    const range = document.createRange();
    range.selectNodeContents(ui.link);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    banner('Copy the selected link by hand (the browser did not allow copying).', 'warn', 5000);
  }
}

function main() {
  fillLanguageSelect(ui.source, SOURCE_LANGUAGES, 'en');
  state.token = loadToken();
  if (state.token) show('setup');
  else show('signin');
  showStatus();

  ui.signinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = ui.token.value.trim();
    if (!/^[\w-]+\.[\w-]+\.[\w-]*$/.test(token)) {
      banner('That does not look like a token (three dot-separated parts).', 'bad');
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    state.token = token;
    banner('');
    show('setup');
    showStatus();
  });
  ui.signout.addEventListener('click', () => forgetToken(''));
  ui.start.addEventListener('click', start);
  ui.pause.addEventListener('click', () =>
    control('pause', state.broadcast.isPaused ? 'resumeBroadcast' : 'pauseBroadcast'),
  );
  ui.mute.addEventListener('click', () =>
    control('mute', state.broadcast.isMuted ? 'unmuteBroadcast' : 'muteBroadcast'),
  );
  ui.volume.addEventListener('input', () => {
    ui.volumeOut.textContent = `${ui.volume.value} %`;
  });
  // on release only: dragging would send dozens of messages past the control rate
  ui.volume.addEventListener('change', () => {
    if (
      !state.conn ||
      !state.conn.send({ action: 'setVolume', volumeLevel: Number(ui.volume.value) / 100 })
    ) {
      renderControls();
    }
  });
  ui.end.addEventListener('click', () => {
    if (!confirm('End the session for everyone?')) return;
    if (state.conn && state.conn.send({ action: 'endSession' })) {
      ui.end.disabled = true; // sessionEnded follows
    } else {
      endSession('You ended the session.'); // a clean close ends it too
    }
  });
  ui.copy.addEventListener('click', copyLink);
  ui.transcriptVtt.addEventListener('click', () => downloadTranscript('vtt'));
  ui.transcriptText.addEventListener('click', () => downloadTranscript('text'));
  ui.again.addEventListener('click', () => location.reload());
  window.addEventListener('beforeunload', (ev) => {
    if (state.phase === 'live' || state.phase === 'reconnecting') {
      ev.preventDefault();
      ev.returnValue = ''; // closing the tab drops the speaker: ask first
    }
  });
  setInterval(tickDuration, 1000);
}

main();
