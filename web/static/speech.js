// speech.js -- plays the spoken translation a listener asked for ("Hear it").
//
// The server synthesises each final once and sends it as one or more binary
// frames (tolk.js parses them): a header with the language, seq, part and
// last flag, then 16-bit PCM. A final's audio is played only when all of its
// parts are here, and finals are played one after the other in seq order,
// never on top of each other: overlapping sentences are noise. Everything
// goes through one gain node set to the speaker's broadcast volume, and the
// listener's pause suspends the whole audio context, so a sentence stops
// mid-word and goes on from there on resume.

const MAX_QUEUE = 30; // finals waiting; past this the oldest go (a long local pause)
const KEEP_SEEN = 200; // seqs remembered so a repeated final is not played twice
const DEFAULT_RATE = 22050; // espeak-ng's rate, if a header forgets to say

export class SpeechPlayer {
  constructor() {
    this.ctx = null; // made on the first click: browsers start audio only after a gesture
    this.gain = null;
    this.volume = 1;
    this.paused = false; // the listener's own pause (pausePlayback)
    this.language = null; // frames of another language are ignored
    this.parts = new Map(); // seq -> parts received so far (Int16Array[])
    this.seen = new Set(); // seqs queued or played
    this.queue = []; // { seq, buffer }, kept in seq order
    this.current = null; // the source node playing now
    this.played = 0; // finals started, for people (and tests) watching
    this.onChange = null; // called when playing/queued changes
  }

  /** Create or wake the audio context. Call it from a click handler. */
  unlock() {
    if (!this.ctx) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return false;
      this.ctx = new Ctx();
      this.gain = this.ctx.createGain();
      this.gain.gain.value = this.volume;
      this.gain.connect(this.ctx.destination);
    }
    if (!this.paused) this.ctx.resume().catch(() => {});
    return true;
  }

  /** broadcastState.volume, 0 to 1. */
  setVolume(v) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return;
    this.volume = Math.max(0, Math.min(1, v));
    if (this.gain) this.gain.gain.setTargetAtTime(this.volume, this.ctx.currentTime, 0.02);
  }

  /** The captions' language; a change drops what belongs to the old one. */
  setLanguage(lang) {
    if (lang === this.language) return;
    this.stop();
    this.language = lang;
  }

  /** One binary frame from tolk.js's parseSpeechFrame. */
  push(header, pcm) {
    if (!this.ctx || header.type !== 'speech') return;
    if (this.language && header.language && header.language !== this.language) return;
    const seq = Number(header.seq);
    if (!Number.isSafeInteger(seq) || this.seen.has(seq)) return;
    let parts = this.parts.get(seq);
    if (!parts) this.parts.set(seq, (parts = []));
    const part = Number.isSafeInteger(header.part) && header.part >= 0 ? header.part : parts.length;
    parts[part] = pcm;
    if (header.last !== true) return;
    this.parts.delete(seq);
    // parts of finals that will never be completed (a dropped connection)
    for (const s of this.parts.keys()) if (s < seq) this.parts.delete(s);
    this._remember(seq);
    const length = parts.reduce((n, p) => n + (p ? p.length : 0), 0);
    if (!length) return;
    const rate =
      typeof header.sampleRate === 'number' &&
      header.sampleRate >= 8000 &&
      header.sampleRate <= 96000
        ? header.sampleRate
        : DEFAULT_RATE;
    const buffer = this.ctx.createBuffer(1, length, rate);
    const out = buffer.getChannelData(0);
    let at = 0;
    for (const p of parts) {
      if (!p) continue;
      for (let i = 0; i < p.length; i++) out[at++] = p[i] / 32768;
    }
    this.queue.push({ seq, buffer });
    this.queue.sort((a, b) => a.seq - b.seq);
    if (this.queue.length > MAX_QUEUE) this.queue.splice(0, this.queue.length - MAX_QUEUE);
    this._next();
  }

  /** The listener's pause: freeze the audio clock, queue what comes. */
  pause() {
    this.paused = true;
    if (this.ctx) this.ctx.suspend().catch(() => {});
    this._changed();
  }

  resume() {
    this.paused = false;
    if (this.ctx) this.ctx.resume().catch(() => {});
    this._changed();
  }

  /** Stop the sentence playing and forget everything queued. */
  stop() {
    this.queue = [];
    this.parts.clear();
    this.seen.clear();
    const src = this.current;
    this.current = null; // first, so its 'ended' does not start the next one
    if (src) {
      try {
        src.stop();
      } catch {
        /* not started */
      }
    }
    this._changed();
  }

  get playing() {
    return !!this.current;
  }

  get queued() {
    return this.queue.length;
  }

  /** Start the next final when nothing plays. On a suspended context it
   *  starts when the context resumes. */
  _next() {
    if (this.current || !this.queue.length) return;
    const { buffer } = this.queue.shift();
    const src = this.ctx.createBufferSource();
    src.buffer = buffer;
    src.connect(this.gain);
    src.onended = () => {
      src.disconnect();
      if (this.current !== src) return;
      this.current = null;
      this._next();
      this._changed();
    };
    this.current = src;
    src.start();
    this.played++;
    this._changed();
  }

  _remember(seq) {
    this.seen.add(seq);
    if (this.seen.size > KEEP_SEEN) {
      const oldest = Math.min(...this.seen);
      this.seen.delete(oldest);
    }
  }

  _changed() {
    if (this.onChange) this.onChange(this);
  }
}
