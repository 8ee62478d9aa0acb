// listen.js -- the listener page, /listen/<code>: join the session in the
// chosen language and show its captions until it ends.
//
// The code comes from the path, so a QR code or a link is all a listener
// needs. The connection (tolk.js) keeps the membership alive: heartbeats,
// reconnection with refreshConnection, and the handover a draining gateway
// asks for. This file turns server messages into what the reader sees.
//
// Captions can come twice (a catch-up after a join or reconnect repeats the
// last finals), so the caption view orders them by seq and drops repeats,
// and a reconnect tells the server the last final shown (lastSeq) so only
// what was missed comes again. "Hear it" asks the server for spoken
// translation of this connection; the button shows what the server
// confirmed (speechChanged), and the audio (binary frames) is played by
// speech.js one final after the other at the speaker's volume.

import {
  $,
  LANGUAGES,
  SESSION_CODE_RE,
  TolkConnection,
  describeError,
  fillLanguageSelect,
  keepScreenOn,
  prefs,
  setBanner,
} from '/static/tolk.js';
import { CaptionView } from '/static/captions.js';
import { SpeechPlayer } from '/static/speech.js';

const PENDING_MS = 5000; // a setSpeech or pause not answered in this time is given back
const SIZES = [1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4]; // rem
const ENDED_REASONS = {
  endSession: 'The speaker ended the session.',
  speakerEnded: 'The speaker ended the session.',
  speakerTimeout: 'The speaker did not come back in time; the session has ended.',
  maxDuration: 'The session reached its maximum length and has ended.',
};

const ui = {
  code: $('code'),
  status: $('status'),
  lang: $('lang'),
  smaller: $('smaller'),
  larger: $('larger'),
  contrast: $('contrast'),
  speech: $('speech'),
  playback: $('playback'),
  banner: $('banner'),
  captions: $('captions'),
};
const view = new CaptionView(ui.captions);
const player = new SpeechPlayer();

const state = {
  code: null,
  lang: null, // the language the server is sending
  wanted: null, // the language the reader picked
  changing: false, // a changeLanguage is on its way
  conn: null,
  phase: 'connecting', // connecting | live | reconnecting | failed | ended
  broadcast: null, // broadcastState from the server
  speakerConnected: true,
  speech: false, // the server confirmed spoken translation for this connection
  speechWanted: false, // what the last setSpeech asked for
  speechPending: 0, // timer of an unanswered setSpeech
  playbackPaused: false, // the listener's own pause of the audio, as the server answered it
  playbackPending: 0, // timer of an unanswered pausePlayback / resumePlayback
};
let bannerTimer = 0;

// ------------------------------------------------------------ preferences

function applySize(index) {
  const i = Math.max(0, Math.min(SIZES.length - 1, index));
  document.documentElement.style.setProperty('--caption-size', `${SIZES[i]}rem`);
  ui.smaller.disabled = i === 0;
  ui.larger.disabled = i === SIZES.length - 1;
  prefs.set('size', i);
  return i;
}

function applyContrast(on) {
  document.documentElement.classList.toggle('contrast', on);
  ui.contrast.setAttribute('aria-pressed', String(on));
  prefs.set('contrast', on ? '1' : '0');
}

/** ?lang=xx, then the last choice, then the browser's languages, then English. */
function initialLanguage() {
  const fromUrl = new URLSearchParams(location.search).get('lang');
  const candidates = [fromUrl, prefs.get('lang'), ...(navigator.languages || [])];
  for (const c of candidates) {
    const code = String(c || '')
      .slice(0, 2)
      .toLowerCase();
    if (code in LANGUAGES) return code;
  }
  return 'en';
}

// ------------------------------------------------------------ status

function showStatus() {
  let text = 'Live';
  let tone = 'ok';
  const b = state.broadcast || {};
  if (state.phase === 'ended') [text, tone] = ['Ended', 'bad'];
  else if (state.phase === 'failed') [text, tone] = ['Not connected', 'bad'];
  else if (state.phase === 'connecting') [text, tone] = ['Connecting…', 'warn'];
  else if (state.phase === 'reconnecting') [text, tone] = ['Reconnecting…', 'warn'];
  else if (!state.speakerConnected) [text, tone] = ['Speaker reconnecting', 'warn'];
  else if (b.isPaused) [text, tone] = ['Paused', 'warn'];
  else if (b.isMuted) [text, tone] = ['Muted', 'warn'];
  ui.status.textContent = text;
  ui.status.dataset.tone = tone;
  renderSpeech();
}

function banner(text, tone = 'info', hideAfterMs = 0) {
  clearTimeout(bannerTimer);
  setBanner(ui.banner, text, tone);
  if (hideAfterMs) bannerTimer = setTimeout(() => setBanner(ui.banner, ''), hideAfterMs);
}

/** Notes in the caption flow for changes of the speaker's broadcast. */
function noteBroadcastChange(before, after) {
  if (!before || !after) return;
  if (!before.isPaused && after.isPaused) view.note('The speaker paused the captions.');
  if (before.isPaused && !after.isPaused) view.note('Captions resumed.');
  if (!before.isMuted && after.isMuted) view.note('The speaker muted the microphone.');
  if (before.isMuted && !after.isMuted) view.note('The microphone is on again.');
}

function setBroadcast(b) {
  if (!b || typeof b !== 'object') return;
  noteBroadcastChange(state.broadcast, b);
  state.broadcast = b;
  player.setVolume(b.volume);
}

// ------------------------------------------------------------ spoken translation

function renderSpeech() {
  const live = state.phase === 'live';
  ui.speech.setAttribute('aria-pressed', String(state.speech));
  ui.speech.disabled = !live || !!state.speechPending;
  ui.speech.dataset.playing = player.playing ? 'true' : 'false';
  ui.speech.dataset.played = String(player.played); // finals spoken so far
  ui.playback.hidden = !state.speech;
  ui.playback.setAttribute('aria-pressed', String(state.playbackPaused));
  ui.playback.textContent = state.playbackPaused ? 'Resume audio' : 'Pause audio';
  ui.playback.disabled = !live || !!state.playbackPending;
}

/** Ask for speech on or off; the button changes when speechChanged comes. */
function askForSpeech(enabled) {
  if (enabled && !player.unlock()) {
    banner('This browser cannot play audio.', 'bad', 6000);
    return;
  }
  if (!state.conn || !state.conn.send({ action: 'setSpeech', enabled })) return;
  state.speechWanted = enabled;
  clearTimeout(state.speechPending);
  state.speechPending = setTimeout(() => {
    state.speechPending = 0;
    state.speechWanted = state.speech;
    renderSpeech();
    banner('The server did not answer; spoken translation is as it was.', 'warn', 6000);
  }, PENDING_MS);
  renderSpeech();
}

function speechConfirmed(enabled) {
  clearTimeout(state.speechPending);
  state.speechPending = 0;
  state.speech = state.speechWanted = enabled;
  if (!enabled) {
    player.stop();
    // the pause is only about this audio: a new "Hear it" starts unpaused
    state.playbackPaused = false;
    player.resume();
  }
  renderSpeech();
}

/** No connection will send speech any more; what is queued still plays. */
function speechGone() {
  clearTimeout(state.speechPending);
  clearTimeout(state.playbackPending);
  state.speechPending = state.playbackPending = 0;
  state.speech = state.speechWanted = false;
  renderSpeech();
}

/** pausePlayback / resumePlayback: answered by the server, done here. */
function askForPlayback(pause) {
  const action = pause ? 'pausePlayback' : 'resumePlayback';
  if (!state.conn || !state.conn.send({ action })) return;
  clearTimeout(state.playbackPending);
  state.playbackPending = setTimeout(() => {
    state.playbackPending = 0;
    renderSpeech();
  }, PENDING_MS);
  renderSpeech();
}

function playbackConfirmed(paused) {
  clearTimeout(state.playbackPending);
  state.playbackPending = 0;
  state.playbackPaused = paused;
  if (paused) player.pause();
  else player.resume();
  renderSpeech();
}

/** A binary speech frame (tolk.js): played only while speech is wanted. */
function onAudio(header, pcm) {
  if (state.speechWanted) player.push(header, pcm);
}

/** A fresh socket was asked for speech=1 (refreshParams); confirm it, so
 *  the button never shows more than the server agreed to. */
function confirmSpeechAfterJoin(msg) {
  if (typeof msg.speech === 'boolean') speechConfirmed(msg.speech);
  else if (state.speech) askForSpeech(true);
}

// ------------------------------------------------------------ language

function switchedTo(lang) {
  if (state.lang !== null && lang !== state.lang) view.restart(`— ${LANGUAGES[lang] || lang} —`);
  state.lang = lang;
  player.setLanguage(lang);
  prefs.set('lang', lang);
}

function askForLanguage(lang) {
  if (state.conn && state.conn.send({ action: 'changeLanguage', targetLanguage: lang })) {
    state.changing = true;
    ui.lang.disabled = true;
  }
}

function onLanguagePicked() {
  state.wanted = ui.lang.value;
  if (state.phase === 'live') {
    if (state.wanted !== state.lang) askForLanguage(state.wanted);
  } else if (state.phase === 'failed') {
    connect(); // e.g. after UNSUPPORTED_LANGUAGE: try again with the new choice
  }
  // connecting/reconnecting: the next connect asks for state.wanted
}

// ------------------------------------------------------------ messages

function onMessage(msg) {
  switch (msg.type) {
    case 'sessionJoined':
    case 'connectionRefreshComplete':
      switchedTo(msg.targetLanguage || state.wanted);
      state.speakerConnected = msg.speakerConnected !== false;
      setBroadcast(msg.broadcastState);
      if (state.wanted !== state.lang) askForLanguage(state.wanted);
      if (view.lastSeq === null) view.setPlaceholder('Waiting for the speaker to say something…');
      confirmSpeechAfterJoin(msg);
      break;
    case 'caption':
      if (msg.language && state.lang && msg.language !== state.lang) {
        // the new language can overtake languageChanged; the old one, in flight, is dropped
        if (msg.language !== state.wanted) break;
        switchedTo(msg.language);
      }
      view.add(msg);
      break;
    case 'languageChanged':
      state.changing = false;
      ui.lang.disabled = false;
      switchedTo(msg.targetLanguage);
      if (state.wanted !== state.lang) askForLanguage(state.wanted);
      break;
    case 'broadcastPaused':
    case 'broadcastResumed':
    case 'broadcastMuted':
    case 'broadcastUnmuted':
    case 'volumeChanged':
    case 'speakerStateChanged':
      setBroadcast(msg.broadcastState);
      break;
    case 'speakerDisconnected':
      state.speakerConnected = false;
      view.note(
        `The speaker's connection dropped. Waiting up to ${msg.gracePeriod || 60} s for them to come back…`,
      );
      break;
    case 'speakerReconnected':
      state.speakerConnected = true;
      view.note('The speaker is back.');
      break;
    case 'sessionEnded':
      state.phase = 'ended';
      view.note(ENDED_REASONS[msg.reason] || 'The session has ended.');
      banner('This session has ended. Thank you for listening.', 'info');
      ui.lang.disabled = true;
      speechGone();
      break;
    case 'speechChanged':
      speechConfirmed(msg.enabled === true);
      break;
    case 'playbackPaused':
      playbackConfirmed(true);
      break;
    case 'playbackResumed':
      playbackConfirmed(false);
      break;
    case 'connectionTimeout':
      break; // the close that follows reconnects
    case 'error':
      if (msg.action === 'setSpeech') {
        clearTimeout(state.speechPending);
        state.speechPending = 0;
        state.speechWanted = state.speech;
        banner(
          msg.code === 'INVALID_ACTION'
            ? 'Spoken translation is not available on this server.'
            : describeError(msg),
          'bad',
          6000,
        );
      } else if (msg.action === 'pausePlayback' || msg.action === 'resumePlayback') {
        clearTimeout(state.playbackPending);
        state.playbackPending = 0;
        banner(describeError(msg), 'warn', 6000);
      } else if (msg.action === 'changeLanguage') {
        state.changing = false;
        ui.lang.disabled = false;
        state.wanted = state.lang;
        ui.lang.value = state.lang;
        banner(describeError(msg), 'bad', 6000);
      } else if (state.phase === 'live') {
        banner(describeError(msg), 'warn', 6000);
      }
      break;
    default:
      break;
  }
  showStatus();
}

function onState(phase, info) {
  if (state.phase === 'ended') return;
  state.phase = phase;
  if (phase === 'failed' || phase === 'ended') speechGone();
  if (phase === 'live') {
    if (info.resumed && !info.handover) banner('Reconnected.', 'ok', 3000);
    else if (!info.handover) banner('');
    ui.lang.disabled = state.changing;
  } else if (phase === 'reconnecting') {
    const secs = Math.max(1, Math.round((info.delayMs || 0) / 1000));
    const why = info.error ? `${describeError(info.error)} ` : 'Connection lost. ';
    banner(
      info.delayMs ? `${why}Reconnecting in ${secs} s (attempt ${info.attempt})…` : 'Reconnecting…',
      'warn',
    );
  } else if (phase === 'failed') {
    const err = info.error;
    if (err.code === 'SESSION_NOT_FOUND' && info.afterJoin) {
      state.phase = 'ended';
      view.note('The session has ended.');
      banner('This session has ended.', 'info');
    } else {
      banner(describeError(err), 'bad');
    }
    // a refused language can be replaced by picking another; for other
    // refusals a new pick would only repeat the failed join
    ui.lang.disabled = err.code !== 'UNSUPPORTED_LANGUAGE';
  } else if (phase === 'ended') {
    ui.lang.disabled = true;
  }
  showStatus();
}

// ------------------------------------------------------------ start

function connect() {
  if (state.conn) state.conn.stop(1000);
  state.changing = false;
  state.phase = 'connecting';
  state.conn = new TolkConnection({
    connectParams: () => ({
      action: 'joinSession',
      sessionId: state.code,
      targetLanguage: state.wanted,
    }),
    refreshParams: () => {
      const p = {
        action: 'refreshConnection',
        role: 'listener',
        sessionId: state.code,
        targetLanguage: state.wanted,
      };
      // resume after the last final shown; its seq means nothing in another language
      if (state.wanted === state.lang && view.lastFinalSeq !== null) p.lastSeq = view.lastFinalSeq;
      if (state.speech) p.speech = 1;
      return p;
    },
    onMessage,
    onAudio,
    onState,
  });
  state.conn.start();
  showStatus();
}

function main() {
  let size = applySize(Number(prefs.get('size', 2)));
  ui.smaller.addEventListener('click', () => (size = applySize(size - 1)));
  ui.larger.addEventListener('click', () => (size = applySize(size + 1)));
  applyContrast(prefs.get('contrast') === '1');
  ui.contrast.addEventListener('click', () =>
    applyContrast(ui.contrast.getAttribute('aria-pressed') !== 'true'),
  );

  ui.speech.addEventListener('click', () => askForSpeech(!state.speech));
  ui.playback.addEventListener('click', () => askForPlayback(!state.playbackPaused));
  player.onChange = renderSpeech;

  state.wanted = initialLanguage();
  fillLanguageSelect(ui.lang, LANGUAGES, state.wanted);
  ui.lang.addEventListener('change', onLanguagePicked);

  let raw = location.pathname.replace(/^\/listen\/?/, '').replace(/\/$/, '');
  try {
    raw = decodeURIComponent(raw);
  } catch {
    raw = '';
  }
  const code = raw.toLowerCase();
  ui.code.textContent = code || '…';
  if (!SESSION_CODE_RE.test(code)) {
    state.phase = 'failed';
    showStatus();
    banner(
      'This link has no valid session code. Go back to the start page and type the code.',
      'bad',
    );
    ui.lang.disabled = true;
    return;
  }
  if (raw !== code) history.replaceState(null, '', `/listen/${code}${location.search}`);
  state.code = code;
  document.title = `tolk: ${code}`;
  view.setPlaceholder('Joining…');
  keepScreenOn();
  connect();
}

main();
