// Фигачечная's page: figalize a phrase, keep the hint and the counter live, offer the PNG.
//
// Every URL is relative, so the same files work behind the HTTPS ingress, in the frontend
// image and in the one-process site. No inline script or style: the page satisfies a strict
// Content-Security-Policy (default-src 'self').
'use strict';

(() => {
  const UNAVAILABLE = 'Фигачечная сейчас не отвечает. Попробуйте ещё раз чуть позже.';
  const TOO_MANY = 'Слишком часто! Подождите немного и попробуйте снова.';
  // While the live stream is down, the hint and the counter are polled this often.
  const POLL_MS = 5000;
  // How long the page keeps asking whether the PNG is ready, and the longest pause between asks.
  const IMAGE_WAIT_MS = 60000;
  const IMAGE_MAX_PAUSE_MS = 2000;

  const $ = (id) => document.getElementById(id);
  const form = $('figalize-form');
  const phrase = $('phrase');
  const scheme = $('scheme');
  const button = $('submit');
  const result = $('result');
  const error = $('phrase-error');
  const hint = $('hint');
  const counter = $('counter');
  const download = $('download');
  const buttonLabel = button.textContent;

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Calls the API: the status and the JSON body (null when there is none).
  async function call(path, body) {
    const init = { headers: { accept: 'application/json' } };
    if (body !== undefined) {
      init.method = 'POST';
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const type = response.headers.get('content-type') || '';
    const data = type.startsWith('application/json') ? await response.json().catch(() => null) : null;
    return { status: response.status, data };
  }

  // --- The scheme selector ---------------------------------------------------------------

  async function loadSchemes() {
    try {
      const { status, data } = await call('/api/getschemas/');
      if (status !== 200 || data === null || typeof data !== 'object') throw new Error(`status ${status}`);
      const ids = Object.keys(data).sort((a, b) => Number(a) - Number(b));
      const chosen = scheme.value;
      scheme.replaceChildren(...ids.map((id) => new Option(String(data[id]), id)));
      if (ids.includes(chosen)) scheme.value = chosen;
      scheme.disabled = false;
    } catch (e) {
      // The built-in first scheme stays selectable meanwhile.
      console.warn('schemes not loaded, retrying:', e);
      setTimeout(loadSchemes, POLL_MS);
    }
  }

  // --- Figalizing ---------------------------------------------------------------------------

  // Number of the newest submission: answers to older ones arrive too late to be shown.
  let latest = 0;

  function setBusy(busy) {
    button.disabled = busy;
    button.textContent = busy ? 'Офигачиваю…' : buttonLabel;
    form.setAttribute('aria-busy', String(busy));
    result.setAttribute('aria-busy', String(busy));
  }

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
    phrase.setAttribute('aria-invalid', 'true');
  }

  function clearError() {
    error.hidden = true;
    error.textContent = '';
    phrase.removeAttribute('aria-invalid');
  }

  async function figalize(event) {
    event.preventDefault();
    const submission = ++latest;
    setBusy(true);
    clearError();
    download.hidden = true;
    try {
      const { status, data } = await call('/api/figalize/', {
        schema_id: Number(scheme.value),
        phrase: phrase.value,
      });
      if (submission !== latest) return;
      if (status === 200 && data && typeof data.data === 'string') {
        result.textContent = data.data;
        offerImage(data.data, submission);
      } else if (status === 429) {
        showError(TOO_MANY);
      } else if (status >= 400 && status < 500 && data && typeof data.data === 'string') {
        // Our own answers to the client carry a readable Russian message.
        showError(data.data);
        phrase.focus();
      } else {
        showError(UNAVAILABLE);
      }
    } catch (e) {
      console.warn('figalize failed:', e);
      if (submission === latest) showError(UNAVAILABLE);
    } finally {
      if (submission === latest) setBusy(false);
    }
  }

  // Asks imagizer until the PNG of `text` is stored (204 until then), then shows the link.
  async function offerImage(text, submission) {
    const deadline = Date.now() + IMAGE_WAIT_MS;
    let pause = 150;
    while (submission === latest && Date.now() < deadline) {
      try {
        const { status, data } = await call('/api/getimageurl/', { phrase: text });
        if (submission !== latest) return;
        if (status === 200 && data && typeof data.data === 'string') {
          download.href = data.data;
          download.download = `${text}.png`;
          download.hidden = false;
          return;
        }
        // Any other refusal will not change by asking again.
        if (status !== 204 && status !== 429 && status < 500) return;
      } catch (e) {
        console.warn('image URL not known yet:', e);
      }
      await sleep(pause);
      pause = Math.min(pause * 1.6, IMAGE_MAX_PAUSE_MS);
    }
  }

  // --- The hint and the counter, live -----------------------------------------------------

  const plural = new Intl.PluralRules('ru-RU');
  // The highest count shown: an answer older than what is on screen is not shown.
  let shownCount = -1;

  function showHistory(count, entry) {
    if (!Number.isInteger(count) || count < shownCount) return;
    shownCount = count;
    if (entry && typeof entry.original === 'string' && typeof entry.figalized === 'string') {
      hint.textContent = `Например, ${entry.original} → ${entry.figalized}`;
    }
    const times = plural.select(count) === 'few' ? 'раза' : 'раз';
    counter.textContent = `Нами отфигачили что-то уже ${count.toLocaleString('ru-RU')} ${times}!`;
  }

  let pollTimer = null;

  async function poll() {
    try {
      const [rows, total] = await Promise.all([
        call('/api/gethistory/?limit=1'),
        call('/api/history/count'),
      ]);
      if (total.status !== 200 || !total.data) return;
      const row = rows.status === 200 && Array.isArray(rows.data) ? rows.data[0] : undefined;
      showHistory(total.data.count, row && { original: row[1], figalized: row[2] });
    } catch (e) {
      console.warn('history not reachable:', e);
    }
  }

  function startPolling() {
    if (pollTimer !== null) return;
    poll();
    pollTimer = setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = null;
  }

  // The history stream pushes every commit. While it is down the page polls; the browser
  // reconnects a dropped stream by itself, and one it gave up on is opened again here.
  function listen() {
    if (typeof EventSource !== 'function') {
      startPolling();
      return;
    }
    const stream = new EventSource('/api/history/stream');
    stream.addEventListener('history', (event) => {
      try {
        const update = JSON.parse(event.data);
        showHistory(update.count, update.entry);
      } catch (e) {
        console.warn('unreadable history event:', e);
      }
    });
    stream.addEventListener('open', stopPolling);
    stream.addEventListener('error', () => {
      startPolling();
      if (stream.readyState === EventSource.CLOSED) setTimeout(listen, POLL_MS);
    });
  }

  form.addEventListener('submit', figalize);
  loadSchemes();
  listen();
})();
