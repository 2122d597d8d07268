/* mnistd web page: draw a digit and classify it, train with live progress,
 * list, activate and roll back model versions, evaluate on the test set,
 * browse the sample grid. Plain browser
 * JavaScript, no dependencies; every request goes to the daemon that served
 * this page, by paths relative to it. */
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);

  /* ---- talking to the daemon ------------------------------------------ */

  /* One request. Resolves (never rejects) to {ok, status, data, message}:
   * data is the parsed JSON (or a Blob when asked for), message a readable
   * error built from the API's error/detail fields when the request failed. */
  async function api(method, path, opts) {
    opts = opts || {};
    let resp;
    try {
      resp = await fetch(path, {
        method: method,
        headers: opts.headers || {},
        body: opts.body,
        cache: 'no-store',
      });
    } catch (e) {
      return { ok: false, status: 0, data: null,
               message: 'Could not reach the daemon (' + (e && e.message ? e.message : e) + ').' };
    }
    const ctype = resp.headers.get('Content-Type') || '';
    let data = null;
    try {
      if (ctype.indexOf('json') >= 0)
        data = await resp.json();
      else if (opts.blob && resp.ok)
        data = await resp.blob();
      else
        data = await resp.text();
    } catch (e) {
      data = null;
    }
    if (resp.ok)
      return { ok: true, status: resp.status, data: data, message: '' };
    return { ok: false, status: resp.status, data: data, message: describeError(resp, data) };
  }

  /* "HTTP 422 invalid field: epochs must be an integer in 1..100". */
  function describeError(resp, data) {
    let msg = 'HTTP ' + resp.status;
    if (data && typeof data === 'object' && data.error) {
      msg += ' ' + data.error;
      if (data.detail)
        msg += ': ' + data.detail;
    } else if (typeof data === 'string' && data.trim()) {
      msg += ' ' + data.trim().slice(0, 300);
    } else if (resp.statusText) {
      msg += ' ' + resp.statusText;
    }
    return msg;
  }

  function showError(el, msg) {
    el.textContent = msg;
    el.hidden = false;
  }

  function clearError(el) {
    el.textContent = '';
    el.hidden = true;
  }

  function pct(x, digits) {
    return (x * 100).toFixed(digits === undefined ? 1 : digits) + '%';
  }

  function num(x, digits) {
    return typeof x === 'number' && isFinite(x) ? x.toFixed(digits) : '–';
  }

  /* ---- served model ----------------------------------------------------- */

  let modelRetry = null;

  async function loadModel() {
    clearTimeout(modelRetry);
    const r = await api('GET', 'model');
    const err = $('model-error');
    if (!r.ok) {
      showError(err, r.message + (r.status === 503 ? ' Retrying…' : ''));
      $('model-version').textContent = 'none';
      if (r.status === 503 || r.status === 0)
        modelRetry = setTimeout(loadModel, 3000);
      return;
    }
    clearError(err);
    const m = r.data;
    $('model-version').textContent = m.version;
    $('model-arch').textContent = m.architecture;
    $('model-params').textContent = Number(m.parameters).toLocaleString('en');
    $('model-accuracy').textContent = typeof m.accuracy === 'number' ? pct(m.accuracy, 2) : 'unknown';
    /* the arithmetic serving predictions, with both accuracies (fp32 / int8) */
    const p = m.precision || {};
    const acc = p.test_accuracy || {};
    const pa = (v) => typeof v === 'number' ? pct(v, 2) : 'unknown';
    $('model-precision').textContent = (p.in_use || 'fp32') + ' (test accuracy fp32 ' + pa(acc.fp32) +
      ', int8 ' + pa(acc.int8) + ')';
    $('model-precision').title = p.note || '';
    $('model-source').textContent = m.source;
    $('model-loaded').textContent = m.loaded_at;
  }

  /* ---- drawing pad --------------------------------------------------------- */

  const pad = $('pad');
  const pctx = pad.getContext('2d');
  /* About an MNIST stroke's width relative to a digit that fills the pad. */
  const BRUSH = 20;
  let drawing = false;
  let pointerId = null;
  let last = null;
  let strokes = 0;       /* strokes since the last clear */
  let generation = 0;    /* bumped by clear/upload: older answers are dropped */
  let inflight = false;
  let queued = false;

  function resetPad() {
    /* An opaque white background: the PNG then has no alpha to composite,
     * and the daemon sees dark ink on a light page and inverts it. */
    pctx.fillStyle = '#fff';
    pctx.fillRect(0, 0, pad.width, pad.height);
    pctx.strokeStyle = '#000';
    pctx.fillStyle = '#000';
    pctx.lineWidth = BRUSH;
    pctx.lineCap = 'round';
    pctx.lineJoin = 'round';
  }

  function padPoint(e) {
    const rect = pad.getBoundingClientRect();
    return {
      x: (e.clientX - rect.left) * pad.width / rect.width,
      y: (e.clientY - rect.top) * pad.height / rect.height,
    };
  }

  function dot(p) {
    pctx.beginPath();
    pctx.arc(p.x, p.y, BRUSH / 2, 0, Math.PI * 2);
    pctx.fill();
  }

  function line(a, b) {
    pctx.beginPath();
    pctx.moveTo(a.x, a.y);
    pctx.lineTo(b.x, b.y);
    pctx.stroke();
  }

  pad.addEventListener('pointerdown', function (e) {
    if (e.pointerType === 'mouse' && e.button !== 0)
      return;
    e.preventDefault();
    if (drawing)
      return;
    drawing = true;
    pointerId = e.pointerId;
    try { pad.setPointerCapture(e.pointerId); } catch (x) { /* capture is a nicety */ }
    last = padPoint(e);
    dot(last);
  });

  pad.addEventListener('pointermove', function (e) {
    if (!drawing || e.pointerId !== pointerId)
      return;
    e.preventDefault();
    /* Coalesced events keep fast strokes smooth. */
    const evs = typeof e.getCoalescedEvents === 'function' ? e.getCoalescedEvents() : [];
    const list = evs.length ? evs : [e];
    for (const ev of list) {
      const p = padPoint(ev);
      line(last, p);
      last = p;
    }
  });

  function endStroke(e) {
    if (!drawing || e.pointerId !== pointerId)
      return;
    drawing = false;
    pointerId = null;
    strokes++;
    pad.dataset.strokes = String(strokes);
    predictPad();
  }
  pad.addEventListener('pointerup', endStroke);
  pad.addEventListener('pointercancel', endStroke);
  pad.addEventListener('lostpointercapture', endStroke);

  /* Sends the pad to POST /predict. One request at a time: strokes that end
   * meanwhile are folded into one more request for the latest drawing. */
  async function predictPad() {
    if (inflight) {
      queued = true;
      return;
    }
    inflight = true;
    try {
      do {
        queued = false;
        const gen = generation;
        const upTo = strokes;
        const blob = await new Promise(function (resolve) { pad.toBlob(resolve, 'image/png'); });
        if (!blob) {
          showError($('predict-error'), 'The browser could not export the drawing as PNG.');
          break;
        }
        const r = await api('POST', 'predict', { body: blob, headers: { 'Content-Type': 'image/png' } });
        if (gen !== generation)
          continue;
        if (r.ok)
          showPrediction(r.data, 'drawing');
        else
          showError($('predict-error'), r.message);
        $('result').dataset.strokes = String(upTo);
        if (r.ok)
          explainPad(blob, upTo, gen);
      } while (queued);
    } finally {
      inflight = false;
    }
  }

  /* ---- the heat map over the drawing ------------------------------------------ */

  const heatPad = $('heat');
  const hctx = heatPad.getContext('2d');
  const heatToggle = $('heat-toggle');
  let heatWant = null;     /* the newest drawing to explain: {blob, strokes, gen} */
  let heatBusy = false;
  let heatShown = null;    /* the explanation drawn, for the toggle */

  /* Asks POST /explain about the drawing once its prediction is shown. One
   * request at a time; strokes that end meanwhile replace the one waiting.
   * Explanations have their own queue in the daemon, so they never delay
   * the predictions. */
  async function explainPad(blob, upTo, gen) {
    heatWant = { blob: blob, strokes: upTo, gen: gen };
    if (heatBusy || !heatToggle.checked)
      return;
    heatBusy = true;
    try {
      while (heatWant && heatToggle.checked) {
        const w = heatWant;
        heatWant = null;
        const r = await api('POST', 'explain', { body: w.blob, headers: { 'Content-Type': 'image/png' } });
        if (w.gen !== generation)
          continue;
        if (r.ok)
          drawHeat(r.data, w.strokes);
        else
          heatPad.dataset.error = r.message;
      }
    } finally {
      heatBusy = false;
    }
  }

  /* Each of the 28x28 attributions as a square over the part of the drawing
   * the network saw there (the answer's field: where its 28x28 input lies
   * over the PNG sent, which is the pad itself): red where it raised the
   * score, blue where it lowered it, stronger for larger ones. */
  function drawHeat(e, upTo) {
    hctx.clearRect(0, 0, heatPad.width, heatPad.height);
    let top = 0;
    for (const row of e.attributions)
      for (const a of row)
        top = Math.max(top, Math.abs(a));
    const f = e.field;
    const cw = f.width / 28, ch = f.height / 28;
    let cells = 0;
    for (let y = 0; y < 28 && top > 0; y++)
      for (let x = 0; x < 28; x++) {
        const a = e.attributions[y][x];
        if (a === 0)
          continue;
        const alpha = 0.75 * Math.sqrt(Math.abs(a) / top);
        hctx.fillStyle = a > 0 ? 'rgba(220, 38, 38, ' + alpha.toFixed(3) + ')'
                               : 'rgba(37, 99, 235, ' + alpha.toFixed(3) + ')';
        hctx.fillRect(f.x + x * cw, f.y + y * ch, cw, ch);
        cells++;
      }
    heatShown = { e: e, strokes: upTo };
    heatPad.dataset.strokes = String(upTo);
    heatPad.dataset.target = String(e.target);
    heatPad.dataset.cells = String(cells);
    delete heatPad.dataset.error;
  }

  function clearHeat() {
    hctx.clearRect(0, 0, heatPad.width, heatPad.height);
    heatWant = null;
    heatShown = null;
    heatPad.dataset.strokes = '0';
    heatPad.dataset.cells = '0';
    delete heatPad.dataset.error;
  }

  /* Off: the map is hidden and no more explanations are asked; on again:
   * the drawing as it is now is explained. */
  heatToggle.addEventListener('change', function () {
    heatPad.hidden = !heatToggle.checked;
    if (heatToggle.checked && strokes > 0 && (!heatShown || heatShown.strokes !== strokes)) {
      const gen = generation, upTo = strokes;
      pad.toBlob(function (blob) {
        if (blob)
          explainPad(blob, upTo, gen);
      }, 'image/png');
    }
  });

  function buildBars() {
    const ol = $('bars');
    for (let d = 0; d < 10; d++) {
      const li = document.createElement('li');
      const label = document.createElement('span');
      label.textContent = String(d);
      const track = document.createElement('span');
      track.className = 'track';
      track.setAttribute('aria-hidden', 'true');
      const fill = document.createElement('span');
      fill.className = 'fill';
      fill.style.display = 'block';
      track.appendChild(fill);
      track.style.display = 'block';
      const val = document.createElement('span');
      val.className = 'pct';
      val.textContent = '–';
      li.append(label, track, val);
      li.dataset.digit = String(d);
      ol.appendChild(li);
    }
  }

  function showPrediction(p, source) {
    clearError($('predict-error'));
    $('digit').textContent = String(p.digit);
    $('confidence').textContent = 'Confidence ' + pct(p.confidence) + ' (from the ' + source + ').';
    const items = $('bars').children;
    for (let d = 0; d < 10; d++) {
      const prob = p.probabilities[d];
      const li = items[d];
      li.querySelector('.fill').style.width = (prob * 100).toFixed(2) + '%';
      li.querySelector('.pct').textContent = pct(prob);
      li.dataset.p = String(prob);
      li.classList.toggle('best', d === p.digit);
    }
    let meta = 'Model ' + p.model_version;
    if (p.timing && typeof p.timing.total_us === 'number')
      meta += ', answered in ' + (p.timing.total_us / 1000).toFixed(1) + ' ms';
    if (typeof p.batch_size === 'number')
      meta += ' (batch of ' + p.batch_size + ')';
    $('predict-meta').textContent = meta + '.';
  }

  function resetResult() {
    $('digit').textContent = '–';
    $('confidence').textContent = 'Draw a digit to see what the network thinks.';
    $('predict-meta').textContent = '';
    for (const li of $('bars').children) {
      li.querySelector('.fill').style.width = '0';
      li.querySelector('.pct').textContent = '–';
      li.classList.remove('best');
      delete li.dataset.p;
    }
    $('result').dataset.strokes = '0';
    clearError($('predict-error'));
  }

  function clearPad() {
    generation++;
    strokes = 0;
    pad.dataset.strokes = '0';
    resetPad();
    clearHeat();
    resetResult();
  }

  $('clear').addEventListener('click', clearPad);

  $('upload').addEventListener('change', async function () {
    const input = $('upload');
    const file = input.files && input.files[0];
    if (!file)
      return;
    clearPad();
    const gen = generation;
    $('confidence').textContent = 'Classifying ' + file.name + '…';
    const r = await api('POST', 'predict', {
      body: file,
      headers: { 'Content-Type': file.type === 'image/png' ? 'image/png' : 'application/octet-stream' },
    });
    /* Cleared so that choosing the same file again fires change again. */
    input.value = '';
    if (gen !== generation)
      return;
    if (r.ok) {
      showPrediction(r.data, 'file ' + file.name);
    } else {
      $('confidence').textContent = 'Draw a digit to see what the network thinks.';
      showError($('predict-error'), file.name + ': ' + r.message);
    }
    $('result').dataset.upload = file.name;
  });

  /* ---- training ------------------------------------------------------------- */

  const TOKEN_KEY = 'mnistd.token';
  const tokenInput = $('token');
  let job = null;          /* the job shown */
  let pollTimer = null;
  let pollSeq = 0;         /* bumped when another job is followed */

  try {
    tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || '';
  } catch (e) { /* storage disabled: the field still works for this page */ }
  tokenInput.addEventListener('input', function () {
    try {
      if (tokenInput.value)
        sessionStorage.setItem(TOKEN_KEY, tokenInput.value);
      else
        sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* ignore */ }
  });

  function authHeaders(extra) {
    const h = Object.assign({}, extra || {});
    const t = tokenInput.value.trim();
    if (t)
      h.Authorization = 'Bearer ' + t;
    return h;
  }

  function active(j) {
    return j && (j.status === 'queued' || j.status === 'running');
  }

  function authHint(r) {
    return r.status === 401 ? ' Enter the API token above and try again.' : '';
  }

  $('train-form').addEventListener('submit', async function (e) {
    e.preventDefault();
    const errEl = $('train-error');
    clearError(errEl);
    const body = {};
    for (const name of ['epochs', 'batch_size', 'learning_rate', 'validation_split', 'seed', 'limit']) {
      const el = $(name);
      const v = el.value.trim();
      if (v === '') {
        if (el.validity && el.validity.badInput) {
          showError(errEl, el.labels[0].textContent.trim() + ' is not a number.');
          el.focus();
          return;
        }
        continue;  /* the daemon's default */
      }
      body[name] = Number(v);
    }
    body.promote = $('promote').value;
    $('train-start').disabled = true;
    const r = await api('POST', 'train', {
      body: JSON.stringify(body),
      headers: authHeaders({ 'Content-Type': 'application/json' }),
    });
    if (r.ok) {
      follow(r.data);
      return;
    }
    $('train-start').disabled = false;
    if (r.status === 409 && r.data && typeof r.data.job_id === 'number') {
      showError(errEl, r.message + ' Showing job ' + r.data.job_id + '.');
      follow({ id: r.data.job_id });
      return;
    }
    showError(errEl, r.message + authHint(r));
    if (r.status === 401)
      tokenInput.focus();
    else if (r.data && r.data.field && $(r.data.field))
      $(r.data.field).focus();
  });

  $('train-cancel').addEventListener('click', async function () {
    if (!job)
      return;
    const errEl = $('train-error');
    clearError(errEl);
    $('train-cancel').disabled = true;
    const r = await api('DELETE', 'train/' + job.id, { headers: authHeaders() });
    if (r.ok) {
      renderJob(r.data);
      $('train-status').textContent += ' Cancelling…';
    } else {
      showError(errEl, r.message + authHint(r));
      $('train-cancel').disabled = !active(job);
    }
  });

  /* Shows job j (a job object, or just {id}) and polls it while it runs. */
  function follow(j) {
    clearTimeout(pollTimer);
    const seq = ++pollSeq;
    if (j.status)
      renderJob(j);
    poll(j.id, seq, j.status ? 500 : 0);
  }

  function poll(id, seq, delay) {
    pollTimer = setTimeout(async function () {
      const r = await api('GET', 'train/' + id);
      if (seq !== pollSeq)
        return;
      if (!r.ok) {
        showError($('train-error'), 'Polling job ' + id + ': ' + r.message);
        if (r.status !== 404)
          poll(id, seq, 2000);
        return;
      }
      const before = job && job.id === id ? job.status : null;
      renderJob(r.data);
      if (active(r.data))
        poll(id, seq, 500);
      else if (before !== r.data.status)
        jobFinished(r.data);
    }, delay);
  }

  function jobFinished(j) {
    loadModels();
    if (j.status === 'succeeded') {
      loadModel();
      loadSamples();
    } else if (j.status === 'failed' && j.error) {
      showError($('train-error'), 'Job ' + j.id + ' failed: ' + j.error);
    }
  }

  function secs(s) {
    if (typeof s !== 'number' || !isFinite(s))
      return '–';
    if (s < 90)
      return s.toFixed(s < 10 ? 1 : 0) + ' s';
    return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
  }

  function renderJob(j) {
    job = j;
    $('job').hidden = false;
    const run = active(j);
    $('train-cancel').disabled = !run;
    $('train-start').disabled = run;
    const pr = j.progress || {};
    let status = 'Job ' + j.id + ': ' + j.status;
    if (j.reason === 'startup')
      status += ' (started by the daemon: no model file)';
    if (run && pr.epochs) {
      status += ', epoch ' + pr.epoch + ' of ' + pr.epochs + ', batch ' + pr.batch + ' of ' + pr.batches;
      if (typeof j.samples_per_sec === 'number')
        status += ', ' + Math.round(j.samples_per_sec).toLocaleString('en') + ' samples/s';
      if (typeof j.eta_seconds === 'number')
        status += ', about ' + secs(j.eta_seconds) + ' left';
    } else if (typeof j.elapsed_seconds === 'number') {
      status += ' after ' + secs(j.elapsed_seconds);
    }
    if (typeof j.train_samples === 'number' && typeof j.val_samples === 'number')
      status += ' (' + j.train_samples.toLocaleString('en') + ' training, ' +
                j.val_samples.toLocaleString('en') + ' validation images).';
    else
      status += '.';
    $('train-status').textContent = status;
    $('job').dataset.status = j.status;

    const bar = $('train-progress');
    const frac = j.status === 'succeeded' ? 1 : (typeof pr.fraction === 'number' ? pr.fraction : 0);
    bar.value = Math.max(0, Math.min(1, frac));
    bar.textContent = pct(bar.value, 0);
    let label = 'Progress ' + pct(bar.value, 0);
    if (pr.batches)
      label += ' (epoch ' + pr.epoch + ' of ' + pr.epochs + ', batch ' + pr.batch + ' of ' + pr.batches + ')';
    $('train-progress-label').textContent = label;

    renderHistory(j);
    drawChart();
    const t = $('train-test');
    if (j.test && typeof j.test.accuracy === 'number') {
      t.textContent = 'Test accuracy ' + pct(j.test.accuracy, 2) + ', test loss ' + num(j.test.loss, 4) +
                      (j.model_version ? ', model ' + j.model_version + '.' : '.');
    } else {
      t.textContent = '';
    }
    const pr2 = $('train-promotion');
    pr2.dataset.promoted = String(j.promoted);
    if (typeof j.promoted === 'boolean')
      pr2.textContent = (j.promoted ? 'Promoted: now serving this model. ' : 'Not promoted: the served model stays. ') +
                        (j.promotion || '');
    else
      pr2.textContent = j.promote ? 'Promotion policy: ' + j.promote + '.' : '';
  }

  function renderHistory(j) {
    const tbody = $('history').querySelector('tbody');
    tbody.textContent = '';
    for (const h of j.history || []) {
      const tr = document.createElement('tr');
      for (const v of [String(h.epoch), num(h.loss, 4), num(h.accuracy, 4), num(h.val_loss, 4),
                       num(h.val_accuracy, 4), num(h.seconds, 1)]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
  }

  /* The loss/accuracy chart: x = epochs (0..E), loss on the left axis,
   * accuracy on the right; dashed lines for validation; while a job runs, a
   * ring marks the running figures of the epoch in progress. */
  function drawChart() {
    const c = $('train-chart');
    const j = job;
    const dpr = window.devicePixelRatio || 1;
    const W = Math.max(240, c.clientWidth || 640);
    const H = Math.round(W * 280 / 640);
    if (c.width !== Math.round(W * dpr) || c.height !== Math.round(H * dpr)) {
      c.width = Math.round(W * dpr);
      c.height = Math.round(H * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, W, H);
    g.fillStyle = '#fff';
    g.fillRect(0, 0, W, H);
    if (!j)
      return;
    const hist = j.history || [];
    c.dataset.epochs = String(hist.length);
    const pr = j.progress || {};
    const E = Math.max(1, (j.config && j.config.epochs) || pr.epochs || hist.length);
    const live = active(j) && pr.batches > 0 && pr.batch > 0 && typeof j.loss === 'number'
      ? { x: (pr.epoch - 1) + pr.batch / pr.batches, loss: j.loss, acc: j.accuracy } : null;

    let maxLoss = 0;
    let minAcc = 1;
    for (const h of hist) {
      for (const v of [h.loss, h.val_loss])
        if (typeof v === 'number') maxLoss = Math.max(maxLoss, v);
      for (const v of [h.accuracy, h.val_accuracy])
        if (typeof v === 'number') minAcc = Math.min(minAcc, v);
    }
    if (live) {
      maxLoss = Math.max(maxLoss, live.loss);
      if (typeof live.acc === 'number') minAcc = Math.min(minAcc, live.acc);
    }
    maxLoss = maxLoss > 0 ? niceCeil(maxLoss) : 1;
    /* Accuracy axis: the highest of these lower ends under every value, so
     * four grid steps are round percentages (1%, 2%, 5%, 10%, 20%, 25%). */
    let accLo = 0;
    for (const lo of [0.96, 0.92, 0.8, 0.6, 0.2, 0])
      if (minAcc >= lo) { accLo = lo; break; }

    const fontPx = W < 420 ? 10 : 12;
    const L = fontPx * 4, R = fontPx * 4, T = 12, B = fontPx * 2.6;
    const pw = W - L - R, ph = H - T - B;
    const inset = 10;  /* keeps the first and last epoch's points off the frame */
    const X = (x) => L + inset + (pw - 2 * inset) * x / E;
    const YL = (v) => T + ph * (1 - v / maxLoss);
    const YA = (v) => T + ph * (1 - (v - accLo) / (1 - accLo));

    g.font = fontPx + 'px system-ui, sans-serif';
    g.lineWidth = 1;
    g.strokeStyle = '#e3e6ea';
    g.fillStyle = '#59636e';
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const y = T + ph * i / 4;
      g.beginPath();
      g.moveTo(L, y);
      g.lineTo(L + pw, y);
      g.stroke();
      g.textAlign = 'right';
      g.fillStyle = '#d9480f';
      g.fillText(fmtAxis(maxLoss * (1 - i / 4)), L - 4, y);
      g.textAlign = 'left';
      g.fillStyle = '#0a58ca';
      g.fillText(pct(accLo + (1 - accLo) * (1 - i / 4), 0), L + pw + 4, y);
    }
    g.fillStyle = '#59636e';
    g.textAlign = 'center';
    g.textBaseline = 'top';
    const step = Math.max(1, Math.ceil(E / Math.max(1, Math.floor(pw / 40))));
    for (let e = 0; e <= E; e += step)
      g.fillText(String(e), X(e), T + ph + 4);
    g.fillText('epoch', L + pw / 2, T + ph + fontPx + 6);
    g.strokeStyle = '#8c959f';
    g.strokeRect(L, T, pw, ph);

    series(g, hist, 'loss', X, YL, '#d9480f', [], live && { x: live.x, v: live.loss });
    series(g, hist, 'val_loss', X, YL, '#d9480f', [6, 4], null);
    series(g, hist, 'accuracy', X, YA, '#0a58ca', [], live && typeof live.acc === 'number' && { x: live.x, v: live.acc });
    series(g, hist, 'val_accuracy', X, YA, '#0a58ca', [6, 4], null);
  }

  function series(g, hist, key, X, Y, colour, dash, live) {
    const pts = [];
    for (const h of hist)
      if (typeof h[key] === 'number')
        pts.push({ x: h.epoch, y: h[key] });
    g.save();
    g.strokeStyle = colour;
    g.fillStyle = colour;
    g.lineWidth = 2;
    g.setLineDash(dash);
    if (pts.length > 1) {
      g.beginPath();
      pts.forEach(function (p, i) {
        if (i === 0) g.moveTo(X(p.x), Y(p.y));
        else g.lineTo(X(p.x), Y(p.y));
      });
      g.stroke();
    }
    for (const p of pts) {
      g.beginPath();
      g.arc(X(p.x), Y(p.y), dash.length ? 3 : 4, 0, Math.PI * 2);
      g.fill();
    }
    if (live) {
      g.setLineDash([2, 3]);
      if (pts.length) {
        const p = pts[pts.length - 1];
        g.beginPath();
        g.moveTo(X(p.x), Y(p.y));
        g.lineTo(X(live.x), Y(live.v));
        g.stroke();
      }
      g.setLineDash([]);
      g.beginPath();
      g.arc(X(live.x), Y(live.v), 4, 0, Math.PI * 2);
      g.stroke();
    }
    g.restore();
  }

  /* The smallest of 1, 2, 4, 6, 8 times a power of ten at or above v: a
   * quarter of it (one grid step) is then a round number too. */
  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 4, 6, 8, 10])
      if (m * p >= v) return m * p;
    return 10 * p;
  }

  function fmtAxis(v) {
    if (v === 0)
      return '0';
    return v >= 10 ? v.toFixed(0) : v >= 1 ? String(+v.toFixed(2)) : String(+v.toFixed(3));
  }

  let resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawChart, 100);
  });

  /* The newest job, if any, is shown on load (a startup job included). */
  async function loadJobs() {
    const r = await api('GET', 'train');
    if (r.ok && r.data && Array.isArray(r.data.jobs) && r.data.jobs.length && !job) {
      const j = r.data.jobs[0];
      if (active(j))
        follow(j);
      else
        renderJob(j);
    }
  }

  /* ---- model versions ------------------------------------------------------------ */

  let previousVersion = null;

  async function loadModels() {
    const r = await api('GET', 'models');
    const errEl = $('models-error');
    const tbody = $('models-table').querySelector('tbody');
    if (!r.ok) {
      tbody.textContent = '';
      $('models-rollback').disabled = true;
      if (r.status === 404) {
        clearError(errEl);
        $('models-status').textContent = 'This daemon serves a single model file (no --model-dir): there are no versions to list.';
      } else {
        showError(errEl, r.message);
      }
      return;
    }
    clearError(errEl);
    const d = r.data;
    previousVersion = d.previous;
    tbody.textContent = '';
    for (const m of d.models) {
      const tr = document.createElement('tr');
      tr.dataset.version = m.version;
      if (m.active)
        tr.className = 'active';
      const cells = [m.version, m.active ? 'active' : (m.previous ? 'previous' : ''), m.created_at,
                     m.job_id === null ? '–' : String(m.job_id),
                     typeof m.test_accuracy === 'number' ? pct(m.test_accuracy, 2) : 'unknown'];
      cells.forEach(function (text, i) {
        const td = document.createElement(i === 0 ? 'th' : 'td');
        if (i === 0)
          td.scope = 'row';
        td.textContent = text;
        tr.appendChild(td);
      });
      const td = document.createElement('td');
      if (!m.active && d.writable) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'activate';
        b.textContent = 'Activate';
        b.setAttribute('aria-label', 'Activate version ' + m.version);
        b.addEventListener('click', function () { activate(m.version); });
        td.appendChild(b);
      }
      tr.appendChild(td);
      tbody.appendChild(tr);
    }
    $('models-rollback').disabled = !(d.writable && d.previous);
    $('models-status').textContent = d.models.length + ' version' + (d.models.length === 1 ? '' : 's') +
      (d.active ? '; serving ' + d.active : '; none active') +
      (d.previous ? '; rolling back activates ' + d.previous : '') +
      (d.writable ? '.' : '. This daemon serves a repository another process owns: change it there.');
  }

  async function activate(version) {
    const errEl = $('models-error');
    clearError(errEl);
    const r = await api('POST', 'models/' + version + '/activate', { headers: authHeaders() });
    if (!r.ok) {
      showError(errEl, r.message + authHint(r));
      if (r.status === 401)
        tokenInput.focus();
      return;
    }
    $('models-status').textContent = 'Activated ' + version + '.';
    await Promise.all([loadModel(), loadModels()]);
    loadSamples();
  }

  $('models-rollback').addEventListener('click', function () {
    if (previousVersion)
      activate(previousVersion);
  });
  $('models-refresh').addEventListener('click', function () {
    loadModel();
    loadModels();
  });

  /* ---- evaluation ------------------------------------------------------------ */

  $('evaluate').addEventListener('click', async function () {
    const btn = $('evaluate');
    const errEl = $('eval-error');
    clearError(errEl);
    btn.disabled = true;
    const label = btn.textContent;
    btn.textContent = 'Evaluating…';
    const r = await api('POST', 'evaluate');
    btn.disabled = false;
    btn.textContent = label;
    if (!r.ok) {
      showError(errEl, r.message);
      return;
    }
    renderEvaluation(r.data);
    btn.focus();
  });

  function renderEvaluation(ev) {
    $('eval-result').hidden = false;
    $('eval-accuracy').textContent = pct(ev.accuracy, 2);
    $('eval-loss').textContent = num(ev.loss, 4);
    $('eval-images').textContent = Number(ev.images).toLocaleString('en');
    $('eval-time').textContent = secs(ev.seconds) +
      (typeof ev.images_per_sec === 'number' ? ' (' + Math.round(ev.images_per_sec).toLocaleString('en') + ' images/s)' : '');

    const table = $('confusion');
    const thead = table.querySelector('thead');
    const tbody = table.querySelector('tbody');
    thead.textContent = '';
    tbody.textContent = '';
    const classes = (ev.confusion || []).length;
    const perClass = {};
    for (const pc of ev.per_class || [])
      perClass[pc.class] = pc;

    const hr = document.createElement('tr');
    const corner = document.createElement('th');
    corner.className = 'corner';
    corner.scope = 'col';
    corner.textContent = 'true \\ pred';
    hr.appendChild(corner);
    for (let c = 0; c < classes; c++) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = String(c);
      hr.appendChild(th);
    }
    const rh = document.createElement('th');
    rh.scope = 'col';
    rh.textContent = 'recall %';
    hr.appendChild(rh);
    thead.appendChild(hr);

    for (let t = 0; t < classes; t++) {
      const row = ev.confusion[t];
      const total = row.reduce((a, b) => a + b, 0) || 1;
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = String(t);
      tr.appendChild(th);
      for (let p = 0; p < classes; p++) {
        const td = document.createElement('td');
        const n = row[p];
        td.textContent = String(n);
        td.title = 'true ' + t + ', predicted ' + p + ': ' + n + ' (' + pct(n / total) + ' of the ' + t + 's)';
        heat(td, n / total, t === p, n);
        tr.appendChild(td);
      }
      const rc = document.createElement('td');
      rc.className = 'pr';
      rc.textContent = perClass[t] ? (100 * perClass[t].recall).toFixed(1) : '–';
      tr.appendChild(rc);
      tbody.appendChild(tr);
    }
    const pr = document.createElement('tr');
    const pth = document.createElement('th');
    pth.scope = 'row';
    pth.textContent = 'precision %';
    pth.className = 'corner';
    pr.appendChild(pth);
    for (let p = 0; p < classes; p++) {
      const td = document.createElement('td');
      td.className = 'pr';
      td.textContent = perClass[p] ? (100 * perClass[p].precision).toFixed(1) : '–';
      pr.appendChild(td);
    }
    pr.appendChild(document.createElement('td'));
    tbody.appendChild(pr);
  }

  /* Heat map colour of a cell from its share of the row: blue on the
   * diagonal (right), red off it (wrong), amplified because errors are rare. */
  function heat(td, share, diag, n) {
    if (n === 0) {
      td.style.background = '#fafbfc';
      td.style.color = '#aab2bb';
      return;
    }
    let light;
    if (diag) {
      light = 95 - 60 * share;
      td.style.background = 'hsl(215, 80%, ' + light.toFixed(0) + '%)';
    } else {
      light = 94 - 50 * Math.min(1, share * 10);
      td.style.background = 'hsl(5, 85%, ' + light.toFixed(0) + '%)';
    }
    td.style.color = light < 58 ? '#fff' : '#1b1f24';
  }

  /* ---- sample grid --------------------------------------------------------------- */

  let samplesUrl = null;

  function offsetValue() {
    const v = $('samples-offset').value.trim();
    return v === '' ? 0 : Number(v);
  }

  async function loadSamples() {
    const errEl = $('samples-error');
    const offset = $('samples-offset').value.trim() || '0';
    const r = await api('GET', 'samples.png?offset=' + encodeURIComponent(offset), { blob: true });
    if (!r.ok) {
      showError(errEl, r.message);
      return;
    }
    clearError(errEl);
    const img = $('samples');
    if (samplesUrl)
      URL.revokeObjectURL(samplesUrl);
    samplesUrl = URL.createObjectURL(r.data);
    const o = Number(offset);
    img.alt = 'Test images ' + (o + 1) + ' to ' + (o + 25) + ', each captioned with its label and the prediction.';
    img.dataset.offset = offset;
    img.src = samplesUrl;
    img.hidden = false;
    $('samples-link').href = 'samples.png?offset=' + encodeURIComponent(offset);
  }

  function stepSamples(delta) {
    let o = offsetValue();
    if (!isFinite(o))
      o = 0;
    o = Math.max(0, Math.min(9975, Math.round(o) + delta));
    $('samples-offset').value = String(o);
    loadSamples();
  }

  $('samples-form').addEventListener('submit', function (e) {
    e.preventDefault();
    loadSamples();
  });
  $('samples-prev').addEventListener('click', function () { stepSamples(-25); });
  $('samples-next').addEventListener('click', function () { stepSamples(25); });

  /* ---- start --------------------------------------------------------------------- */

  buildBars();
  resetPad();
  pad.dataset.strokes = '0';
  drawChart();
  loadModel();
  loadModels();
  loadJobs();
  loadSamples();
  document.documentElement.dataset.ready = '1';
})();
