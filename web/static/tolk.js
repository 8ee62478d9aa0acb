// tolk.js -- what the speaker and listener pages share: the language list,
// small DOM and storage helpers, and TolkConnection, which keeps one session
// membership alive across WebSockets (heartbeats, reconnection with backoff,
// and the refresh-first handover the protocol asks for).
//
// The server sends text frames (JSON messages) and, to a listener that asked
// for spoken translation, binary frames of synthesised speech; TolkConnection
// hands each kind to its own callback.
//
// The protocol is docs/protocol.md; everything here talks only to the
// gateway that served the page (same host), so the Origin check passes and
// nothing leaves the machine.

/** Target languages offered in pickers. The server has the last word: a
 *  language Apertium cannot reach is refused with UNSUPPORTED_LANGUAGE. */
export const LANGUAGES = {
  en: 'English',
  es: 'Español',
  ca: 'Català',
  gl: 'Galego',
  eo: 'Esperanto',
  fr: 'Français',
  pt: 'Português',
  it: 'Italiano',
};

/** What the recogniser speaks (config key source_languages). */
export const SOURCE_LANGUAGES = { en: 'English' };

/** The exact session id forms the gateway accepts (one group of digits: codes
 *  made before 0.2). */
export const SESSION_CODE_RE = /^[a-z]+-[a-z]+-[0-9]{3}(-[0-9]{3})?$/;

/** Turn what a person typed or pasted (a code, a spaced code, a whole
 *  listener link) into a session code, or null. */
export function normaliseCode(input) {
  let s = String(input || '').trim();
  const m = s.match(/\/listen\/([^/?#\s]+)/);
  if (m) s = decodeURIComponent(m[1]);
  s = s.toLowerCase().replace(/[\s_]+/g, '-');
  return SESSION_CODE_RE.test(s) ? s : null;
}

export function $(id) {
  return document.getElementById(id);
}

/** localStorage that never throws: private browsing modes refuse it, and
 *  preferences are not worth failing a page over. */
export const prefs = {
  get(key, fallback = null) {
    try {
      const v = localStorage.getItem('tolk.' + key);
      return v === null ? fallback : v;
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try {
      localStorage.setItem('tolk.' + key, String(value));
    } catch {
      /* not stored: fine */
    }
  },
};

/** Fill a <select> from a code -> name map. */
export function fillLanguageSelect(select, languages, selected) {
  select.textContent = '';
  for (const [code, name] of Object.entries(languages)) {
    const opt = document.createElement('option');
    opt.value = code;
    opt.textContent = `${name} (${code})`;
    select.append(opt);
  }
  select.value = selected in languages ? selected : Object.keys(languages)[0];
}

/** "1:02:03" / "2:03" for a number of seconds. */
export function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** Keep a phone's screen on while captions are read or a talk is given.
 *  Only in secure contexts (https, localhost); elsewhere it quietly does
 *  nothing. The lock is lost whenever the tab is hidden, so take it again. */
export function keepScreenOn() {
  if (!('wakeLock' in navigator)) return;
  const take = () => navigator.wakeLock.request('screen').catch(() => {});
  take();
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') take();
  });
}

/** A banner line: one element whose text and tone change. Empty text hides it. */
export function setBanner(el, text, tone = 'info') {
  el.textContent = text || '';
  el.hidden = !text;
  el.dataset.tone = tone;
}

// ------------------------------------------------------------ connection

const HEARTBEAT_MS = 30000; // the gateway closes connections silent for 120 s
const SILENCE_MS = 75000; // no message at all this long: the socket is dead
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];
const AUDIO_BACKLOG_BYTES = 32768; // about 1 s of 16 kHz audio queued in the browser

/** Refusals at connect that retrying the same request cannot fix. */
const FATAL_CODES = new Set([
  'INVALID_PARAMETERS',
  'UNSUPPORTED_LANGUAGE',
  'UNAUTHENTICATED',
  'UNAUTHORIZED',
  'SESSION_NOT_FOUND',
  'SESSION_FULL',
]);

/** Messages that mean "this socket is now a member of the session". */
const JOINED_TYPES = new Set(['sessionCreated', 'sessionJoined', 'connectionRefreshComplete']);

export function wsUrl(params) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws?${new URLSearchParams(params)}`;
}

/**
 * One session membership over as many sockets as it takes.
 *
 * options.connectParams(): query of the first connect (createSession or
 *   joinSession); options.refreshParams(): query to come back
 *   (refreshConnection), used once a socket has joined.
 * options.onMessage(msg): every server message except heartbeatAck.
 * options.onAudio(header, pcm): optional; a binary speech frame of the
 *   member socket, parsed by parseSpeechFrame (header.type 'speech').
 * options.onState(state, info): 'connecting' | 'live' | 'reconnecting' |
 *   'failed' (info.error: the refusal) | 'ended'. info.attempt and
 *   info.delayMs while reconnecting; info.resumed when live again, and
 *   info.handover when that was a planned switch to a fresh socket.
 */
export class TolkConnection {
  constructor(options) {
    this.opts = options;
    this.ws = null; // the socket that is the member (or trying to be)
    this.candidate = null; // a refresh socket that will replace ws
    this.joinedOnce = false;
    this.stopped = false;
    this.attempt = 0;
    this.retryTimer = 0;
    this.heartbeatTimer = 0;
    this.lastRx = 0;
  }

  start() {
    this.stopped = false;
    this._open(this.opts.connectParams(), false);
  }

  /** Leave for good: no reconnection (code 1000 ends a speaker's session). */
  stop(code = 1000) {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeatTimer);
    for (const ws of [this.ws, this.candidate]) if (ws) this._discard(ws, code);
    this.ws = this.candidate = null;
  }

  get live() {
    return !!(this.ws && this.ws.tolkJoined && this.ws.readyState === WebSocket.OPEN);
  }

  send(obj) {
    if (!this.live) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }

  /** Audio goes only on a live socket and is dropped, not queued, when the
   *  browser already holds a second of it: sending a backlog later would
   *  burst past the gateway's chunk rate, and late captions help nobody. */
  sendBinary(buffer) {
    if (!this.live || this.ws.bufferedAmount > AUDIO_BACKLOG_BYTES) return false;
    this.ws.send(buffer);
    return true;
  }

  _open(params, asCandidate) {
    const ws = new WebSocket(wsUrl(params));
    ws.binaryType = 'arraybuffer';
    ws.tolkJoined = false;
    ws.tolkError = null;
    if (asCandidate) {
      this.candidate = ws;
    } else {
      this.ws = ws;
      this.opts.onState(this.joinedOnce ? 'reconnecting' : 'connecting', { attempt: this.attempt });
    }
    ws.onmessage = (ev) => this._message(ws, ev);
    ws.onclose = (ev) => this._closed(ws, ev);
    // onerror is always followed by onclose, which decides what to do
  }

  _message(ws, ev) {
    if (typeof ev.data !== 'string') {
      this._binary(ws, ev.data);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (ws !== this.ws && ws !== this.candidate) return;
    this.lastRx = Date.now();
    if (msg.type === 'heartbeatAck') return;
    if (msg.type === 'error' && !ws.tolkJoined) {
      ws.tolkError = msg; // a refusal at connect: the close that follows acts on it
      if (ws === this.candidate) return;
    }
    if (JOINED_TYPES.has(msg.type)) {
      ws.tolkJoined = true;
      const handover = ws === this.candidate; // nothing was lost: not worth telling the reader
      if (handover) this._promote(ws);
      const resumed = this.joinedOnce;
      this.joinedOnce = true;
      this.attempt = 0;
      this._startHeartbeat();
      this.opts.onState('live', { resumed, handover });
    }
    if (ws === this.candidate) return; // nothing else is expected before its join
    if (msg.type === 'connectionRefreshRequired' || msg.type === 'connectionWarning') {
      this._handover();
    }
    this.opts.onMessage(msg);
  }

  /** Binary frames are spoken translation, sent only after a join and only
   *  to a listener that asked for it. Like text, they count only from the
   *  member socket: a refresh candidate's are dropped until it takes over. */
  _binary(ws, data) {
    if (ws !== this.ws || !ws.tolkJoined) return;
    this.lastRx = Date.now();
    const frame = parseSpeechFrame(data);
    if (frame && this.opts.onAudio) this.opts.onAudio(frame.header, frame.pcm);
  }

  /** Refresh first, then close the old connection (protocol section 3), so
   *  a draining gateway or an aged connection loses no captions. */
  _handover() {
    if (this.candidate || this.stopped || !this.joinedOnce) return;
    this._open(this.opts.refreshParams(), true);
  }

  _promote(ws) {
    const old = this.ws;
    this.ws = ws;
    this.candidate = null;
    if (old) this._discard(old, 1000);
  }

  /** Forget a socket: its late events must not touch the current one. */
  _discard(ws, code) {
    ws.onmessage = ws.onclose = null;
    try {
      ws.close(code);
    } catch {
      /* already closing */
    }
  }

  _closed(ws, ev) {
    if (ws === this.candidate) {
      this.candidate = null; // the handover failed; the old socket goes on
      return;
    }
    if (ws !== this.ws) return;
    this.ws = null;
    clearInterval(this.heartbeatTimer);
    if (this.stopped) return;
    const err = ws.tolkError;
    // 1000 comes only after sessionEnded, which the page has already seen
    if (ev.code === 1000) {
      this.stopped = true;
      this.opts.onState('ended', {});
      return;
    }
    // a long wait (the hourly session limit) is for a person to decide about
    const longWait = err && err.retryAfter > 60;
    if (err && (FATAL_CODES.has(err.code) || longWait)) {
      this.stopped = true;
      this.opts.onState('failed', { error: err, afterJoin: this.joinedOnce });
      return;
    }
    let delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    if (err && err.retryAfter) delay = Math.max(delay, err.retryAfter * 1000);
    delay = Math.round(delay * (0.8 + Math.random() * 0.4)); // spread a crowd's retries
    this.attempt++;
    this.opts.onState('reconnecting', {
      attempt: this.attempt,
      delayMs: delay,
      code: ev.code,
      error: err,
    });
    this.retryTimer = setTimeout(() => {
      if (this.stopped) return;
      this._open(this.joinedOnce ? this.opts.refreshParams() : this.opts.connectParams(), false);
    }, delay);
  }

  _startHeartbeat() {
    clearInterval(this.heartbeatTimer);
    this.lastRx = Date.now();
    this.heartbeatTimer = setInterval(() => {
      if (!this.ws) return;
      // A phone that slept or changed networks can hold a dead socket for
      // minutes without a close event: give up on it ourselves.
      if (Date.now() - this.lastRx > SILENCE_MS) {
        const dead = this.ws;
        this._discard(dead, 4000);
        this._closed(dead, { code: 1006 });
        return;
      }
      this.send({ action: 'heartbeat' });
    }, HEARTBEAT_MS);
  }
}

/**
 * A binary speech frame: [u16 big-endian n][n bytes of JSON header][PCM,
 * signed 16-bit little-endian, mono]. Returns { header, pcm: Int16Array },
 * or null when the frame is not one.
 */
export function parseSpeechFrame(buf) {
  if (!(buf instanceof ArrayBuffer) || buf.byteLength < 2) return null;
  const view = new DataView(buf);
  const n = view.getUint16(0, false);
  if (2 + n > buf.byteLength) return null;
  let header;
  try {
    header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 2, n)));
  } catch {
    return null;
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) return null;
  // read sample by sample: the samples may start at an odd offset, where an
  // Int16Array view is not allowed, and the byte order is fixed
  const count = Math.floor((buf.byteLength - 2 - n) / 2);
  const pcm = new Int16Array(count);
  for (let i = 0, at = 2 + n; i < count; i++, at += 2) pcm[i] = view.getInt16(at, true);
  return { header, pcm };
}

/** Words for a refusal or a close, for people. */
export function describeError(err) {
  if (!err) return '';
  switch (err.code) {
    case 'SESSION_NOT_FOUND':
      return 'There is no live session with this code. It may have ended.';
    case 'SESSION_FULL':
      return 'This session has as many listeners as it can take.';
    case 'UNSUPPORTED_LANGUAGE':
      return 'That language is not available for this session. Please pick another one.';
    case 'UNAUTHENTICATED':
      return 'The speaker token was refused (missing, invalid or expired).';
    case 'UNAUTHORIZED':
      return 'This token may not do that (a session can be resumed only by its speaker).';
    case 'RATE_LIMIT_EXCEEDED':
      return `Too many attempts; try again in ${err.retryAfter || 1} s.`;
    case 'SERVICE_UNAVAILABLE':
      return 'The server is busy or restarting; retrying.';
    default:
      return err.message || err.code || 'Something went wrong.';
  }
}
