// tests/web/web.test.js -- drives the web page of a running mnistd in headless
// Chromium (playwright-core, the system's /usr/bin/chromium).
//
//   BASE_URL=http://127.0.0.1:PORT/ MNISTD_DATA=dir OUT_DIR=build/web node web.test.js
//   (https: also CERT_SPKI=<base64 sha256 of the server key> NODE_EXTRA_CA_CERTS=ca.pem)
//
// Prints PASS/FAIL lines; exits 1 on any failure. The daemon must serve the
// page at / and have test data (MNISTD_DATA) for /evaluate and /samples.png.
// Training adds versions to the daemon's model repository and activates
// them: give it a repository of its own (--model-dir).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const { chromium } = require('playwright-core');

const BASE = (process.env.BASE_URL || '').replace(/\/?$/, '/');
const DATA = process.env.MNISTD_DATA || '';
const OUT = process.env.OUT_DIR || 'build/web';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// An https BASE_URL: the base64 SHA-256 of the server key's SubjectPublicKeyInfo,
// the one certificate key Chromium accepts besides its trust store (Node's
// fetch trusts the test CA through NODE_EXTRA_CA_CERTS).
const CERT_SPKI = process.env.CERT_SPKI || '';
const DIGITS = Number(process.env.WEB_DIGITS || 5); // test images drawn by hand
const TRAIN_TIMEOUT = 180000;

let failures = 0;
function pass(name) { console.log('PASS ' + name); }
function fail(name, why) { console.log('FAIL ' + name + ': ' + why); failures++; }
function check(name, cond, why) { if (cond) pass(name); else fail(name, why); return cond; }

// ---- MNIST and PNG helpers ---------------------------------------------------

/* Reads an IDX file (gzip or not): {dims, data}. */
function readIdx(file) {
  let buf = fs.readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b)
    buf = zlib.gunzipSync(buf);
  if (buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 8)
    throw new Error(file + ': not an unsigned-byte IDX file');
  const nd = buf[3];
  const dims = [];
  for (let i = 0; i < nd; i++)
    dims.push(buf.readUInt32BE(4 + 4 * i));
  const data = buf.subarray(4 + 4 * nd);
  const want = dims.reduce((a, b) => a * b, 1);
  if (data.length !== want)
    throw new Error(file + ': ' + data.length + ' bytes of data, header says ' + want);
  return { dims, data };
}

function findFile(dir, base) {
  for (const f of [base + '.gz', base])
    if (fs.existsSync(path.join(dir, f)))
      return path.join(dir, f);
  throw new Error('no ' + base + '(.gz) in ' + dir);
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++)
      c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf)
    c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/* An 8-bit grayscale PNG of w x h pixels. */
function grayPng(pixels, w, h) {
  const raw = Buffer.alloc((w + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w + 1)] = 0;  // filter: none
    pixels.copy(raw, y * (w + 1) + 1, y * w, (y + 1) * w);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;   // bit depth
  ihdr[9] = 0;   // gray
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

async function apiJson(method, p, body, headers) {
  const r = await fetch(BASE + p, { method, body, headers });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, json };
}

// ---- page helpers ---------------------------------------------------------------

async function text(page, sel) {
  return (await page.locator(sel).textContent()) || '';
}

/* Replays a 28x28 MNIST image as mouse strokes on the pad: one stroke per
 * run of ink pixels in each row, the pointer moving pixel by pixel. Returns
 * the number of strokes. */
async function drawDigit(page, img) {
  // The mouse works in viewport coordinates: the whole pad must be in view.
  await page.locator('#pad').scrollIntoViewIfNeeded();
  const box = await page.locator('#pad').boundingBox();
  const s = box.width / 28;
  const X = (x) => box.x + (x + 0.5) * s;
  const Y = (y) => box.y + (y + 0.5) * s;
  let strokes = 0;
  for (let y = 0; y < 28; y++) {
    let x = 0;
    while (x < 28) {
      if (img[y * 28 + x] < 128) { x++; continue; }
      const x0 = x;
      while (x < 28 && img[y * 28 + x] >= 128) x++;
      const x1 = x - 1;
      await page.mouse.move(X(x0), Y(y));
      await page.mouse.down();
      await page.mouse.move(X(x1), Y(y), { steps: Math.max(1, x1 - x0) });
      await page.mouse.up();
      strokes++;
    }
  }
  return strokes;
}

/* Waits until the prediction shown covers every stroke drawn. */
async function waitPrediction(page, strokes) {
  await page.waitForFunction(
    (n) => document.getElementById('result').dataset.strokes === String(n) &&
           document.getElementById('pad').dataset.strokes === String(n),
    strokes, { timeout: 30000 });
}

async function shownDigit(page) {
  return (await text(page, '#digit')).trim();
}

// ---- the test ----------------------------------------------------------------------

async function main() {
  if (!BASE.startsWith('http'))
    throw new Error('BASE_URL is not set');
  fs.mkdirSync(OUT, { recursive: true });
  const images = readIdx(findFile(DATA, 't10k-images-idx3-ubyte'));
  const labels = readIdx(findFile(DATA, 't10k-labels-idx1-ubyte'));
  const image = (i) => images.data.subarray(i * 784, (i + 1) * 784);

  // The page and its assets, as plain HTTP.
  {
    const root = await apiJson('GET', '');
    const js = await apiJson('GET', 'static/app.js');
    const css = await apiJson('GET', 'static/style.css');
    const post = await apiJson('POST', '', 'x', { 'Content-Type': 'text/plain' });
    check('web_page_served',
      root.status === 200 && /^text\/html/.test(root.headers.get('content-type') || '') &&
      root.text.includes('id="pad"') &&
      /script-src 'self'/.test(root.headers.get('content-security-policy') || '') &&
      js.status === 200 && /javascript/.test(js.headers.get('content-type') || '') &&
      css.status === 200 && /text\/css/.test(css.headers.get('content-type') || '') &&
      post.status === 405 && /GET/.test(post.headers.get('allow') || '') && post.json && post.json.error,
      `GET / ${root.status} ${root.headers.get('content-type')}, app.js ${js.status}, style.css ${css.status}, POST / ${post.status}`);
  }
  const model = (await apiJson('GET', 'model')).json;

  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnistd-chromium-'));
  const ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--disable-quic'].concat(CERT_SPKI ? ['--ignore-certificate-errors-spki-list=' + CERT_SPKI] : []),
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.setDefaultTimeout(30000);
    const consoleErrors = [];
    const foreign = [];
    page.on('pageerror', (e) => consoleErrors.push('page error: ' + e.message));
    page.on('console', (m) => {
      // 4xx/5xx answers the test provokes are logged by Chromium as
      // "Failed to load resource"; anything else is a bug (CSP refusals too).
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text()))
        consoleErrors.push(m.text());
    });
    page.on('request', (r) => {
      if (!r.url().startsWith(BASE) && !r.url().startsWith('blob:') && !r.url().startsWith('data:'))
        foreign.push(r.url());
    });

    const response = await page.goto(BASE);
    await page.waitForFunction(() => document.documentElement.dataset.ready === '1');
    if (BASE.startsWith('https:')) {
      const sec = response ? await response.securityDetails() : null;
      const proto = await page.evaluate(() => location.protocol + ' ' + window.isSecureContext);
      check('web_https', proto === 'https: true' && sec !== null && /^TLS/.test(sec.protocol || ''),
            `location ${proto}, security ${sec ? sec.protocol + ' ' + sec.subjectName : 'none'}`);
    }
    await page.waitForFunction((v) => document.getElementById('model-version').textContent === v,
                               model.version, { timeout: 10000 }).catch(() => {});
    check('web_model_info', (await text(page, '#model-version')) === model.version &&
          (await text(page, '#model-params')).replace(/,/g, '') === String(model.parameters),
          `shown ${await text(page, '#model-version')} / ${await text(page, '#model-params')}, ` +
          `API ${model.version} / ${model.parameters}`);
    {
      const shown = await text(page, '#model-precision');
      check('web_model_precision', shown.startsWith(model.precision.in_use + ' (test accuracy fp32 '),
            `shown "${shown}", API in_use ${model.precision.in_use}`);
    }

    // Keyboard: Tab reaches the clear button and a focus ring is drawn.
    {
      const label = await page.locator('#pad').getAttribute('aria-label');
      let reached = false;
      for (let i = 0; i < 30 && !reached; i++) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate(() => document.activeElement && document.activeElement.id === 'clear');
      }
      const outline = reached ? await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle) : '';
      // The next Tab stop is the file picker, its label showing the ring.
      await page.keyboard.press('Tab');
      const up = await page.evaluate(() => ({
        id: document.activeElement && document.activeElement.id,
        outline: getComputedStyle(document.querySelector('label.file')).outlineStyle,
      }));
      check('web_keyboard', !!label && label.length > 10 && reached && outline !== 'none' &&
            up.id === 'upload' && up.outline !== 'none',
            `aria-label ${JSON.stringify(label)}, clear reached by Tab: ${reached}, outline ${outline}, ` +
            `then ${JSON.stringify(up)}`);
    }

    // Draw real test digits; most must be read right.
    {
      let right = 0;
      const got = [];
      for (let i = 0; i < DIGITS; i++) {
        await page.locator('#clear').click();
        const n = await drawDigit(page, image(i));
        await waitPrediction(page, n);
        const d = await shownDigit(page);
        const bars = await page.evaluate(() => Array.from(document.querySelectorAll('#bars li'))
          .map((li) => ({ p: Number(li.dataset.p), top: li.classList.contains('best'),
                          w: parseFloat(li.querySelector('.fill').style.width) })));
        const sum = bars.reduce((a, b) => a + b.p, 0);
        const top = bars.findIndex((b) => b.top);
        if (bars.length !== 10 || Math.abs(sum - 1) > 1e-3 || String(top) !== d ||
            Math.abs(bars[top].w - 100 * bars[top].p) > 0.1) {
          fail('web_draw_bars', `digit ${d}, bars ${JSON.stringify(bars)}`);
          break;
        }
        if (d === String(labels.data[i]))
          right++;
        got.push(`${labels.data[i]}->${d}`);
        if (i === 0)
          await page.screenshot({ path: path.join(OUT, 'draw.png') });
      }
      if (got.length === DIGITS)
        pass('web_draw_bars');
      check('web_draw_digits', right >= Math.ceil(DIGITS * 0.8),
            `${right} of ${DIGITS} drawn digits read right (${got.join(' ')})`);
      console.log(`# drawn digits (label->shown): ${got.join(' ')}`);
    }

    // The heat map over the drawing (the last digit drawn is still on the
    // pad): once the explanation of every stroke is in, the overlay's own
    // pixels lie on the ink, and the page as Chromium renders it (a
    // screenshot of the pad, read back pixel by pixel) shows red and blue
    // over the black-and-white drawing; the toggle hides them and shows
    // them again.
    {
      const n = Number(await page.locator('#pad').getAttribute('data-strokes'));
      const explained = await page.waitForFunction(
        (k) => document.getElementById('heat').dataset.strokes === String(k), n, { timeout: 60000 })
        .then(() => true, () => false);
      const px = await page.evaluate(() => {
        const w = 280, h = 280;
        const heat = document.getElementById('heat').getContext('2d').getImageData(0, 0, w, h).data;
        const pad = document.getElementById('pad').getContext('2d').getImageData(0, 0, w, h).data;
        let ink = 0, inkCovered = 0, coloured = 0, offInk = 0;
        for (let i = 0; i < w * h * 4; i += 4) {
          const isInk = pad[i] < 128, c = heat[i + 3] > 0;
          ink += isInk;
          inkCovered += isInk && c;
          coloured += c;
          /* coloured, and no ink within 12 px (about one cell of the field) */
          if (c && !isInk) {
            const x = (i / 4) % w, y = Math.floor(i / 4 / w);
            let near = false;
            for (let dy = -12; dy <= 12 && !near; dy += 2)
              for (let dx = -12; dx <= 12 && !near; dx += 2) {
                const xx = x + dx, yy = y + dy;
                near = xx >= 0 && yy >= 0 && xx < w && yy < h && pad[(yy * w + xx) * 4] < 128;
              }
            offInk += !near;
          }
        }
        return { ink, inkCovered, coloured, offInk };
      });
      // Tinted pixels of a screenshot of the pad (inside its border): the
      // drawing itself is gray, so any colour is the overlay's.
      const tinted = async () => {
        const shot = (await page.locator('#pad').screenshot()).toString('base64');
        return page.evaluate(async (b64) => {
          const img = new Image();
          img.src = 'data:image/png;base64,' + b64;
          await img.decode();
          const c = document.createElement('canvas');
          c.width = img.width;
          c.height = img.height;
          const g = c.getContext('2d');
          g.drawImage(img, 0, 0);
          const d = g.getImageData(4, 4, img.width - 8, img.height - 8).data;
          let red = 0, blue = 0;
          for (let i = 0; i < d.length; i += 4) {
            red += d[i] - d[i + 2] > 40;
            blue += d[i + 2] - d[i] > 40;
          }
          return { red, blue };
        }, shot);
      };
      const on = await tinted();
      check('web_heat_overlay',
        explained && px.ink > 0 && px.inkCovered >= 0.8 * px.ink && px.offInk === 0 && on.red > 200 &&
        on.red > on.blue,
        `explained ${explained}, heat pixels ${JSON.stringify(px)}, screenshot ${JSON.stringify(on)}`);
      await page.locator('#heat-toggle').uncheck();
      const off = await tinted();
      const hiddenOff = await page.evaluate(() => getComputedStyle(document.getElementById('heat')).display);
      await page.locator('#heat-toggle').check();
      const back = await tinted();
      check('web_heat_toggle', off.red === 0 && off.blue === 0 && hiddenOff === 'none' &&
            back.red === on.red && back.blue === on.blue,
            `on ${JSON.stringify(on)}, off ${JSON.stringify(off)} (display ${hiddenOff}), on again ${JSON.stringify(back)}`);
      await page.locator('.pad-stack').screenshot({ path: path.join(OUT, 'heat.png') });
    }

    // Keyboard clear: Space on the focused clear button empties the result.
    await page.locator('#clear').focus();
    await page.keyboard.press('Space');
    check('web_keyboard_clear', (await shownDigit(page)) === '–' &&
          (await page.locator('#pad').getAttribute('data-strokes')) === '0' &&
          (await page.locator('#heat').getAttribute('data-cells')) === '0',
          `after Space on Clear: digit ${await shownDigit(page)}`);

    // Upload a PNG through the file picker: the page shows what the API answers.
    {
      const idx = 7;
      const png = grayPng(Buffer.from(image(idx)), 28, 28);
      const api = (await apiJson('POST', 'predict', png, { 'Content-Type': 'image/png' })).json;
      await page.locator('#upload').setInputFiles({ name: 'digit.png', mimeType: 'image/png', buffer: png });
      await page.waitForFunction(() => document.getElementById('result').dataset.upload === 'digit.png');
      const d = await shownDigit(page);
      check('web_upload_png', api && d === String(api.digit) && d === String(labels.data[idx]),
            `shown ${d}, API ${api && api.digit}, label ${labels.data[idx]}`);
    }

    // A file the API refuses: its error and detail are shown.
    {
      const bad = Buffer.from('this is not a PNG\n');
      const res = await apiJson('POST', 'predict', bad, { 'Content-Type': 'image/png' });
      const api = res.status === 400 ? res.json : null;
      await page.locator('#upload').setInputFiles({ name: 'notes.png', mimeType: 'image/png', buffer: bad });
      await page.waitForFunction(() => document.getElementById('result').dataset.upload === 'notes.png');
      const shown = await text(page, '#predict-error');
      check('web_upload_error', api && api.error && shown.includes(api.error) &&
            (!api.detail || shown.includes(api.detail)) && await page.locator('#predict-error').isVisible(),
            `shown ${JSON.stringify(shown)}, API ${res.status} ${res.text}`);
    }

    // A training request the API refuses: its message is shown.
    {
      const res = await apiJson('POST', 'train', JSON.stringify({ epochs: 0 }),
                                { 'Content-Type': 'application/json' });
      const api = res.status === 422 ? res.json : null;
      await page.fill('#epochs', '0');
      await page.locator('#train-start').click();
      await page.waitForFunction(() => !document.getElementById('train-error').hidden);
      const shown = await text(page, '#train-error');
      check('web_train_error', api && api.error && shown.includes(api.error) &&
            (!api.detail || shown.includes(api.detail)) && shown.includes('422'),
            `shown ${JSON.stringify(shown)}, API ${res.status} ${res.text}`);
    }

    // Start a long job and cancel it from the page.
    {
      await page.fill('#epochs', '2');
      await page.fill('#limit', '0');
      await page.locator('#train-start').click();
      let ok = true;
      let why = '';
      try {
        // An error shown by the page ends the wait early (and fails below).
        await page.waitForFunction(() => document.getElementById('job').dataset.status === 'running' ||
                                         !document.getElementById('train-error').hidden,
                                   null, { timeout: 60000 });
        if (!(await page.locator('#train-error').isHidden()))
          throw new Error('the page shows an error');
        await page.locator('#train-cancel').click();
        await page.waitForFunction(() => document.getElementById('job').dataset.status === 'cancelled' ||
                                         !document.getElementById('train-error').hidden,
                                   null, { timeout: 60000 });
        if (!(await page.locator('#train-error').isHidden()))
          throw new Error('the page shows an error');
      } catch (e) {
        ok = false;
        why = e.message.split('\n')[0] + '; status ' + (await page.locator('#job').getAttribute('data-status')) +
              '; ' + (await text(page, '#train-status')) + ' ' + (await text(page, '#train-error'));
      }
      check('web_train_cancel', ok, why);
    }

    // A short job: the chart shows its epoch, the served model becomes its model.
    {
      await page.fill('#epochs', '1');
      await page.fill('#limit', '2000');
      await page.selectOption('#promote', 'always');
      await page.locator('#train-start').click();
      let ok = true;
      let why = '';
      try {
        await page.waitForFunction(() => (document.getElementById('job').dataset.status === 'succeeded' &&
                                          Number(document.getElementById('train-chart').dataset.epochs) >= 1) ||
                                         !document.getElementById('train-error').hidden,
                                   null, { timeout: TRAIN_TIMEOUT });
        if (!(await page.locator('#train-error').isHidden()))
          throw new Error('the page shows an error');
      } catch (e) {
        ok = false;
        why = e.message.split('\n')[0] + '; ' + (await text(page, '#train-status')) + ' ' +
              (await text(page, '#train-error'));
      }
      if (ok) {
        const st = await page.evaluate(() => {
          const c = document.getElementById('train-chart');
          const g = c.getContext('2d');
          const px = g.getImageData(0, 0, c.width, c.height).data;
          let loss = 0, acc = 0;
          for (let i = 0; i < px.length; i += 4) {
            if (Math.abs(px[i] - 0xd9) < 8 && Math.abs(px[i + 1] - 0x48) < 8 && Math.abs(px[i + 2] - 0x0f) < 8) loss++;
            if (Math.abs(px[i] - 0x0a) < 8 && Math.abs(px[i + 1] - 0x58) < 8 && Math.abs(px[i + 2] - 0xca) < 8) acc++;
          }
          return { loss, acc, rows: document.querySelectorAll('#history tbody tr').length,
                   progress: document.getElementById('train-progress').value };
        });
        ok = st.rows === 1 && st.loss > 10 && st.acc > 10 && st.progress === 1;
        why = `history rows ${st.rows}, loss pixels ${st.loss}, accuracy pixels ${st.acc}, progress ${st.progress}`;
      }
      check('web_train_chart', ok, why);
      const jobs = (await apiJson('GET', 'train')).json;
      const newest = jobs && jobs.jobs && jobs.jobs[0];
      let shownVersion = '';
      if (newest && newest.model_version) {
        await page.waitForFunction((v) => document.getElementById('model-version').textContent === v,
                                   newest.model_version, { timeout: 10000 }).catch(() => {});
        shownVersion = await text(page, '#model-version');
      }
      check('web_train_model', newest && newest.status === 'succeeded' && newest.model_version &&
            shownVersion === newest.model_version && (await text(page, '#train-test')).includes('Test accuracy'),
            `newest job ${newest && newest.status} ${newest && newest.model_version}, shown ${shownVersion}`);
      await page.screenshot({ path: path.join(OUT, 'train.png'), fullPage: true });
    }

    // Models: the job's model is the active version, the one served before is
    // listed as previous; activating it from the panel changes the served-model
    // card, and Roll back brings the job's model back.
    {
      const jobs = (await apiJson('GET', 'train')).json;
      const newest = jobs && jobs.jobs && jobs.jobs[0];
      const promotion = await text(page, '#train-promotion');
      check('web_train_promotion', newest && newest.promoted === true && promotion.startsWith('Promoted') &&
            promotion.includes(newest.promotion), `promoted ${newest && newest.promoted}, shown "${promotion}"`);
      const jobVersion = newest && newest.model_version;
      let ok = true;
      let why = '';
      try {
        await page.waitForFunction((v) => {
          const a = document.querySelector('#models-table tbody tr.active');
          return a && a.dataset.version === v && document.querySelectorAll('#models-table tbody tr').length >= 2;
        }, jobVersion, { timeout: 10000 });
        const row = page.locator(`#models-table tbody tr[data-version="${model.version}"]`);
        const state = (await row.locator('td').first().textContent()) || '';
        await row.locator('button.activate').click();
        // The card and the table are reloaded at once; each may land first.
        await page.waitForFunction((v) => {
          const a = document.querySelector('#models-table tbody tr.active');
          return document.getElementById('model-version').textContent === v && a && a.dataset.version === v;
        }, model.version, { timeout: 10000 }).catch(() => {});
        const nowActive = await page.locator('#models-table tbody tr.active').getAttribute('data-version');
        const served = (await apiJson('GET', 'model')).json;
        ok = state === 'previous' && nowActive === model.version && served.version === model.version &&
             (await text(page, '#model-accuracy')) === (served.accuracy * 100).toFixed(2) + '%';
        why = `older row state "${state}", active row ${nowActive}, served ${served.version}, card ` +
              `${await text(page, '#model-version')} ${await text(page, '#model-accuracy')}`;
      } catch (e) {
        ok = false;
        why = e.message.split('\n')[0] + '; card ' + (await text(page, '#model-version')) + '; ' +
              (await text(page, '#models-status')) + ' ' + (await text(page, '#models-error'));
      }
      check('web_models_activate', ok, why);
      await page.screenshot({ path: path.join(OUT, 'models.png'), fullPage: true });
      ok = true;
      try {
        await page.locator('#models-rollback').click();
        await page.waitForFunction((v) => document.getElementById('model-version').textContent === v,
                                   jobVersion, { timeout: 10000 });
        ok = (await apiJson('GET', 'model')).json.version === jobVersion;
        why = 'the daemon serves another version';
      } catch (e) {
        ok = false;
        why = e.message.split('\n')[0] + '; card ' + (await text(page, '#model-version'));
      }
      check('web_models_rollback', ok, why);
    }

    // Evaluate: accuracy and a 10x10 confusion matrix adding up to the test set.
    {
      await page.locator('#evaluate').click();
      let ok = true;
      let why = '';
      try {
        await page.waitForFunction(() => !document.getElementById('eval-result').hidden ||
                                         !document.getElementById('eval-error').hidden, null, { timeout: 120000 });
      } catch (e) {
        ok = false;
        why = e.message.split('\n')[0];
      }
      if (ok) {
        const m = await page.evaluate(() => {
          const rows = Array.from(document.querySelectorAll('#confusion tbody tr')).slice(0, 10);
          const cells = rows.map((tr) => Array.from(tr.querySelectorAll('td')).slice(0, 10));
          return {
            error: document.getElementById('eval-error').hidden ? '' : document.getElementById('eval-error').textContent,
            counts: cells.map((r) => r.map((td) => Number(td.textContent))),
            diagBg: cells.length ? getComputedStyle(cells[0][0]).backgroundColor : '',
            offBg: cells.length ? getComputedStyle(cells[0][1]).backgroundColor : '',
            accuracy: document.getElementById('eval-accuracy').textContent,
            images: document.getElementById('eval-images').textContent,
          };
        });
        const total = m.counts.flat().reduce((a, b) => a + b, 0);
        const diag = m.counts.reduce((a, r, i) => a + (r[i] || 0), 0);
        const accShown = parseFloat(m.accuracy);
        ok = !m.error && m.counts.length === 10 && m.counts.every((r) => r.length === 10) &&
             total === 10000 && m.images.replace(/,/g, '') === '10000' &&
             Math.abs(accShown - 100 * diag / total) < 0.006 && m.diagBg !== m.offBg;
        why = m.error || `${m.counts.length} rows, total ${total}, images ${m.images}, accuracy ${m.accuracy} ` +
              `vs diagonal ${(100 * diag / total).toFixed(2)}%, colours ${m.diagBg} / ${m.offBg}`;
      }
      check('web_evaluate', ok, why);
    }

    // The sample grid, and the next 25.
    {
      const loaded = () => page.evaluate(() => {
        const img = document.getElementById('samples');
        return { hidden: img.hidden, w: img.naturalWidth, h: img.naturalHeight, offset: img.dataset.offset,
                 complete: img.complete };
      });
      await page.waitForFunction(() => { const i = document.getElementById('samples');
                                         return (!i.hidden && i.complete && i.naturalWidth > 0) ||
                                                !document.getElementById('samples-error').hidden; });
      const first = await loaded();
      const err = await page.locator('#samples-error').isHidden() ? '' : await text(page, '#samples-error');
      await page.locator('#samples-next').click();
      await page.waitForFunction(() => { const i = document.getElementById('samples');
                                         return (i.dataset.offset === '25' && i.complete && i.naturalWidth > 0) ||
                                                !document.getElementById('samples-error').hidden; })
        .catch(() => {});
      const next = await loaded();
      check('web_samples', !err && first.w === 640 && first.h === 770 && next.offset === '25' && next.w === 640 &&
            (await page.locator('#samples-offset').inputValue()) === '25',
            `${err} first ${JSON.stringify(first)}, after Next ${JSON.stringify(next)}`);
    }

    // Draw a digit again so the screenshots show a prediction too.
    await page.locator('#clear').click();
    const n = await drawDigit(page, image(0));
    await waitPrediction(page, n);
    await page.screenshot({ path: path.join(OUT, 'desktop.png'), fullPage: true });

    // A 375-px phone: nothing wider than the screen, the pad fully visible.
    await page.setViewportSize({ width: 375, height: 812 });
    await page.waitForTimeout(250);  // lets the resize handler redraw the chart
    const phone = await page.evaluate(() => {
      const wide = [];
      for (const el of document.querySelectorAll('body *')) {
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.right > window.innerWidth + 1 && !el.closest('.scroll'))
          wide.push((el.id ? '#' + el.id : el.tagName.toLowerCase()) + ' right=' + Math.round(r.right));
      }
      // Tables may scroll sideways in their own box, but at 375 px none needs to.
      for (const el of document.querySelectorAll('.scroll'))
        if (el.scrollWidth > el.clientWidth + 1)
          wide.push((el.firstElementChild ? '#' + el.firstElementChild.id : 'scroll') + ' scrolls ' +
                    el.scrollWidth + '>' + el.clientWidth);
      const pad = document.getElementById('pad').getBoundingClientRect();
      return { scrollWidth: document.documentElement.scrollWidth, wide: wide.slice(0, 8),
               padLeft: pad.left, padRight: pad.right, padWidth: pad.width };
    });
    await page.screenshot({ path: path.join(OUT, 'phone.png'), fullPage: true });
    check('web_phone_layout', phone.scrollWidth <= 375 && phone.wide.length === 0 && phone.padLeft >= 0 &&
          phone.padRight <= 375 && phone.padWidth >= 200,
          JSON.stringify(phone));
    // Drawing works on the phone layout too.
    await page.locator('#clear').click();
    const n2 = await drawDigit(page, image(1));
    await waitPrediction(page, n2);
    check('web_phone_draw', /^[0-9]$/.test(await shownDigit(page)), `shown ${await shownDigit(page)}`);

    const shots = ['desktop.png', 'phone.png', 'train.png'].map((f) => path.join(OUT, f));
    check('web_screenshots', shots.every((f) => fs.existsSync(f) && fs.statSync(f).size > 10000),
          shots.map((f) => f + ' ' + (fs.existsSync(f) ? fs.statSync(f).size : 'missing')).join(', '));
    check('web_same_origin', foreign.length === 0, 'requests elsewhere: ' + foreign.slice(0, 5).join(' '));
    check('web_console_clean', consoleErrors.length === 0, consoleErrors.slice(0, 5).join(' | '));
  } finally {
    await ctx.close();
    fs.rmSync(userDir, { recursive: true, force: true });
  }
}

const guard = setTimeout(() => {
  fail('web', 'the test did not finish within 10 minutes');
  process.exit(1);
}, 600000);

main().then(() => {
  clearTimeout(guard);
  process.exit(failures ? 1 : 0);
}, (e) => {
  clearTimeout(guard);
  fail('web', (e && e.stack) || String(e));
  process.exit(1);
});
