// captions.js -- a scrolling caption list shared by both pages.
//
// The server sends, per language, finals numbered 1, 2, 3 ... without gaps
// (seq) and, before each final, partials carrying the seq their final will
// have. So a row is keyed by seq: partials rewrite it in place, the final
// replaces it for good, and a jump in seq means captions were missed (a
// reconnection), shown as "…".
//
// Finals can also come again or late: a listener that joins or reconnects
// gets a catch-up (finals marked catchUp: true) that may repeat what it
// already shows or fill an earlier gap. So rows are kept in seq order (a
// late final is inserted where it belongs, not at the bottom), a final whose
// seq is already shown is ignored, and the "…" markers are recomputed after
// every insertion so a filled gap loses its marker.
//
// For screen readers the list is a polite live region that announces
// additions only. Partial rows are hidden from it (they change several times
// a second); a final is a new node replacing its partial, so each sentence
// is read once, when it is complete.

const MAX_ROWS = 300; // older rows are dropped: a two-hour talk must not grow the page forever
const STICKY_PX = 48; // "at the bottom" tolerance: follow new captions only if the reader is there

export class CaptionView {
  /** list: the element rows go into (an <ol>); scroller: the element that
   *  scrolls (defaults to list). */
  constructor(list, scroller = list) {
    this.list = list;
    this.scroller = scroller;
    this.rows = new Map(); // seq -> { el, final, gap }: gap is the "…" row before it, if any
    this.lastSeq = null; // highest seq that has a row
    this.lastFinalSeq = null; // highest seq shown as a final (what a reconnect resumes after)
    this.trimmedSeq = 0; // rows up to this seq were trimmed away: ignore them if they come again
    this.placeholder = null;
  }

  /** Show text while there are no captions yet (or clear it with ''). */
  setPlaceholder(text) {
    if (!this.placeholder) {
      this.placeholder = document.createElement('li');
      this.placeholder.className = 'placeholder';
    }
    this.placeholder.textContent = text;
    if (text && !this.placeholder.isConnected && this.rows.size === 0) {
      this.list.append(this.placeholder);
    } else if (!text) {
      this.placeholder.remove();
    }
  }

  /** A caption message from the server (live or catch-up). */
  add(msg) {
    const seq = Number(msg.seq);
    if (!Number.isSafeInteger(seq) || typeof msg.text !== 'string') return;
    if (seq <= this.trimmedSeq) return; // older than anything still on the page
    const follow = this._atBottom();
    const row = this.rows.get(seq);
    if (row && row.final) return; // already final: a repeat (catch-up) or a late partial
    const final = !msg.isPartial;
    const el = this._makeRow(msg);
    if (row) {
      row.el.replaceWith(el);
      row.el = el;
      row.final = final;
    } else {
      this._insert(seq, el);
      this.rows.set(seq, { el, final, gap: null });
      this._markGaps();
    }
    if (this.lastSeq === null || seq > this.lastSeq) this.lastSeq = seq;
    if (final && (this.lastFinalSeq === null || seq > this.lastFinalSeq)) this.lastFinalSeq = seq;
    // a partial left behind by a newer utterance will never get its final
    // (it was lost with a connection): stop showing it as live text
    for (const [s, r] of this.rows) {
      if (s < seq && !r.final) r.el.classList.add('stale');
    }
    this._trim();
    if (follow) this.scrollToEnd();
  }

  /** Start a new run of seq numbers (another language) under a divider. */
  restart(label) {
    this.rows.clear();
    this.lastSeq = null;
    this.lastFinalSeq = null;
    this.trimmedSeq = 0;
    this._append(this._makeNote(label, 'divider'));
    this.scrollToEnd();
  }

  /** A line from the page itself ("paused", "speaker reconnected"). */
  note(text) {
    const follow = this._atBottom();
    this._append(this._makeNote(text, 'note'));
    if (follow) this.scrollToEnd();
  }

  scrollToEnd() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  _makeRow(msg) {
    const li = document.createElement('li');
    li.className = msg.isPartial ? 'caption partial' : 'caption';
    li.textContent = msg.text;
    li.dataset.seq = String(msg.seq);
    if (msg.isPartial) li.setAttribute('aria-hidden', 'true');
    if (msg.untranslated) {
      li.classList.add('untranslated');
      li.title = 'Not translated: the translator was unavailable';
    }
    if (typeof msg.language === 'string') li.lang = msg.language;
    return li;
  }

  _makeNote(text, kind) {
    const li = document.createElement('li');
    li.className = kind;
    li.textContent = text;
    if (kind === 'gap') {
      li.setAttribute('aria-label', 'some captions were missed');
      li.title = 'Some captions were missed here';
    }
    return li;
  }

  _append(el) {
    if (this.placeholder) this.placeholder.remove();
    this.list.append(el);
  }

  /** Put a new row in seq order: before the first row with a higher seq
   *  (and before its "…" marker), or at the end when it is the newest. */
  _insert(seq, el) {
    let next = null;
    for (const [s, r] of this.rows) {
      if (s > seq && (next === null || s < next[0])) next = [s, r];
    }
    if (!next) {
      this._append(el);
      return;
    }
    if (this.placeholder) this.placeholder.remove();
    (next[1].gap || next[1].el).before(el);
  }

  /** One "…" before each row whose seq does not follow the previous row's. */
  _markGaps() {
    const seqs = [...this.rows.keys()].sort((a, b) => a - b);
    for (let i = 0; i < seqs.length; i++) {
      const r = this.rows.get(seqs[i]);
      const missed = i > 0 && seqs[i] > seqs[i - 1] + 1;
      if (missed && !r.gap) {
        r.gap = this._makeNote('…', 'gap');
        r.el.before(r.gap);
      } else if (!missed && r.gap) {
        r.gap.remove();
        r.gap = null;
      }
    }
  }

  _trim() {
    while (this.list.childElementCount > MAX_ROWS) {
      const first = this.list.firstElementChild;
      for (const [s, r] of this.rows) {
        if (r.el === first) {
          this.rows.delete(s);
          this.trimmedSeq = Math.max(this.trimmedSeq, s);
          if (r.gap) r.gap.remove();
        } else if (r.gap === first) {
          r.gap = null; // the row stays, its marker goes with the oldest lines
        }
      }
      first.remove();
    }
  }

  _atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < STICKY_PX;
  }
}
