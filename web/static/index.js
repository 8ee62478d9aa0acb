// index.js -- the start page: a code typed (or a link pasted) becomes a
// visit to /listen/<code>, the page that shows the captions.

import { $, normaliseCode } from '/static/tolk.js';

const form = $('join-form');
const input = $('code');
const error = $('code-error');

input.focus();

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const code = normaliseCode(input.value);
  if (!code) {
    error.textContent = 'That does not look like a session code (two words and three digits).';
    error.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    return;
  }
  location.assign(`/listen/${encodeURIComponent(code)}`);
});

input.addEventListener('input', () => {
  error.hidden = true;
  input.removeAttribute('aria-invalid');
});
