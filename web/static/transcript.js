// transcript.js -- fetch a session's transcript for the speaker page.
//
// The server gives transcripts over the same /ws endpoint as everything
// else, on a short-lived socket of its own (action=getTranscript with the
// speaker's token): one or more `transcript` messages, the last with
// "last": true, then a close. So a download works while the session runs
// and after it has ended, without touching the session's own connection.
// The result is saved as a file through a Blob, so nothing else is needed.

import { wsUrl } from '/static/tolk.js';

const TIMEOUT_MS = 20000; // a transcript that has not come by then is not coming

/**
 * Resolves { text, languages, language, format } once the part marked
 * last has come. Rejects with the server's error message object (code,
 * status, message), or with { code: 'NETWORK' } / { code: 'TIMEOUT' }.
 */
export function fetchTranscript({ sessionId, token, language, format }) {
  return new Promise((resolve, reject) => {
    const params = { action: 'getTranscript', sessionId, token, format };
    if (language) params.language = language;
    const ws = new WebSocket(wsUrl(params));
    const parts = [];
    let languages = null;
    let done = false;
    const finish = (ok, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ws.onmessage = ws.onclose = null;
      try {
        ws.close(1000);
      } catch {
        /* already closed */
      }
      (ok ? resolve : reject)(value);
    };
    const timer = setTimeout(
      () => finish(false, { code: 'TIMEOUT', message: 'The server did not send the transcript.' }),
      TIMEOUT_MS,
    );
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === 'error') {
        finish(false, msg);
      } else if (msg.type === 'transcript') {
        if (Array.isArray(msg.languages) && !languages) languages = msg.languages;
        // parts are numbered from 1 and come in order; place them by number anyway
        const n = Number.isSafeInteger(msg.part) && msg.part > 0 ? msg.part - 1 : parts.length;
        parts[n] = typeof msg.text === 'string' ? msg.text : '';
        if (msg.last === true) {
          finish(true, {
            text: parts.join(''),
            languages: languages || [],
            language: msg.language || language,
            format: msg.format || format,
          });
        }
      }
    };
    ws.onclose = (ev) =>
      finish(false, {
        code: 'NETWORK',
        message: `The connection closed before the transcript was complete (code ${ev.code}).`,
      });
  });
}

/** Offer text as a file download named name. */
export function saveText(text, name, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000); // after the browser has read it
}
