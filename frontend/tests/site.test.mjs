// The site as a visitor uses it, in headless Chromium driven by Playwright.
//
// Run by ci/stack-tests.sh against each site named in SITE_TARGETS, a JSON list of
// {"name", "url"}: the one-process site and the local stack behind the HTTPS ingress.
// A screenshot of each state goes to SCREENSHOT_DIR/<name>/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const targets = JSON.parse(process.env.SITE_TARGETS ?? '[]');
assert.ok(targets.length > 0, 'SITE_TARGETS names no site to test');
const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? 'screenshots';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const NOT_RUSSIAN = 'По-русски, пожалуйста, у нас тут культурное заведение';
// Long enough for a debug build on a busy machine; the waits end as soon as the page is ready.
const WAIT = { timeout: 30_000 };

// What each word should become: the original service's answers.
const golden = readFileSync(
  new URL('../../crates/figalize/tests/data/figalize_words.tsv', import.meta.url),
  'utf8',
)
  .split('\n')
  .slice(1)
  .filter(Boolean)
  .map((line) => line.split('\t'));

function expected(schema, word) {
  const row = golden.find(([id, phrase]) => id === String(schema) && phrase === word);
  assert.ok(row, `no golden answer for ${word} in scheme ${schema}`);
  return row[2];
}

// A Russian word no earlier run has sent, so a page can recognise its own entry.
function freshWord() {
  const consonants = 'бвгдзклмнпрстфх';
  let word = 'проба';
  for (let i = 0; i < 6; i++) {
    word += consonants[Math.floor(Math.random() * consonants.length)] + 'а';
  }
  return word;
}

const countOf = (text) => Number(text.replace(/\D/g, ''));

for (const target of targets) {
  describe(`the site (${target.name})`, () => {
    const shots = path.join(SCREENSHOTS, target.name);
    let browser;
    let context;
    let page;
    let problems = [];
    let documentResponse;

    // Opens a page of the site that records console errors, failed scripts and CSP reports.
    async function open() {
      const opened = await context.newPage();
      opened.on('console', (message) => {
        if (message.type() === 'error') problems.push(`console: ${message.text()}`);
      });
      opened.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      const response = await opened.goto(target.url, { waitUntil: 'load' });
      assert.equal(response.status(), 200);
      await opened.locator('#scheme:not([disabled])').waitFor(WAIT);
      return { opened, response };
    }

    // Drops what the browser logs by itself about a failure a test caused on purpose.
    function forgive(pattern) {
      problems = problems.filter((problem) => !pattern.test(problem));
    }

    async function shot(name, which = page) {
      await which.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
    }

    async function figalize(word, { scheme = '0', submit = 'button' } = {}) {
      await page.selectOption('#scheme', scheme);
      await page.fill('#phrase', word);
      if (submit === 'enter') await page.press('#phrase', 'Enter');
      else await page.click('#submit');
    }

    const resultIs = (text) =>
      page.waitForFunction((want) => document.querySelector('#result').textContent === want, text, WAIT);

    before(async () => {
      mkdirSync(shots, { recursive: true });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-dev-shm-usage',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      // The local stack's certificate is self-signed.
      context = await browser.newContext({
        ignoreHTTPSErrors: true,
        acceptDownloads: true,
        viewport: { width: 1280, height: 900 },
        locale: 'ru-RU',
      });
      ({ opened: page, response: documentResponse } = await open());
    });

    after(async () => {
      await browser?.close();
    });

    test('the page shows the title, the schemes of the API, the hint and the counter', async () => {
      await page.locator('#counter:not(:empty)').waitFor(WAIT);
      assert.equal(await page.textContent('h1'), 'Фигачечная');
      const schemes = await (await page.request.get(new URL('/api/getschemas/', target.url).href)).json();
      const options = await page.$$eval('#scheme option', (all) => all.map((o) => [o.value, o.textContent]));
      assert.deepEqual(Object.fromEntries(options), schemes);
      assert.match(await page.textContent('#hint'), /^Например, .+ → .+$/);
      assert.match(await page.textContent('#counter'), /^Нами отфигачили что-то уже [\d\s]+ раза?!$/);
      assert.equal(await page.getAttribute('#result', 'aria-live'), 'polite');
      assert.equal(await page.getAttribute('#phrase', 'maxlength'), '256');
      const policy = documentResponse.headers()['content-security-policy'];
      assert.match(policy ?? '', /default-src 'self'/);
      await shot('01-loaded');
    });

    test('a word typed and the button pressed shows its figalized form', async () => {
      await figalize('бунгало');
      await resultIs(expected(0, 'бунгало'));
      await shot('02-result');
    });

    test('pressing Enter in the field submits too', async () => {
      await figalize('энурез', { submit: 'enter' });
      await resultIs(expected(0, 'энурез'));
    });

    test('switching the scheme gives the result of that scheme', async () => {
      await figalize('энурез', { scheme: '1' });
      await resultIs(expected(1, 'энурез'));
      await shot('03-other-scheme');
    });

    test('the download link appears and the PNG downloads', async () => {
      const link = page.locator('#download');
      await link.waitFor({ state: 'visible', ...WAIT });
      assert.equal(await link.textContent(), 'Скачать как картинку');
      await shot('04-download-link');
      const [download] = await Promise.all([page.waitForEvent('download', WAIT), link.click()]);
      assert.equal(download.suggestedFilename(), `${expected(1, 'энурез')}.png`);
      const saved = path.join(shots, 'downloaded.png');
      await download.saveAs(saved);
      const png = readFileSync(saved);
      assert.ok(png.length > 100, `a PNG of ${png.length} bytes`);
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    });

    test('a phrase from a second page updates the first page\'s hint and counter without a reload', async () => {
      await page.locator('#counter:not(:empty)').waitFor(WAIT);
      const before = countOf(await page.textContent('#counter'));
      await page.evaluate(() => {
        window.notReloaded = true;
      });
      const { opened: second } = await open();
      const word = freshWord();
      await second.fill('#phrase', word);
      await second.click('#submit');
      await second.waitForFunction(
        () => document.querySelector('#result').textContent.startsWith('Фиг'),
        null,
        WAIT,
      );
      await shot('05-second-page', second);
      await page.waitForFunction((w) => document.querySelector('#hint').textContent.includes(w), word, WAIT);
      await page.waitForFunction(
        (n) => Number(document.querySelector('#counter').textContent.replace(/\D/g, '')) > n,
        before,
        WAIT,
      );
      assert.equal(await page.evaluate(() => window.notReloaded), true);
      await shot('06-updated-live');
      await second.close();
    });

    test('Latin text shows the 400 message in place and the page stays usable', async () => {
      await figalize('hello');
      const error = page.locator('#phrase-error');
      await error.waitFor({ state: 'visible', ...WAIT });
      assert.equal(await error.textContent(), NOT_RUSSIAN);
      assert.equal(await page.getAttribute('#phrase', 'aria-invalid'), 'true');
      assert.equal(await page.getAttribute('#phrase-error', 'role'), 'alert');
      await shot('07-not-russian');
      await figalize('бунгало');
      await resultIs(expected(0, 'бунгало'));
      await error.waitFor({ state: 'hidden', ...WAIT });
      forgive(/status of 400\b/);
    });

    test('while the answer is on its way the button shows a busy state', async () => {
      let release;
      const held = new Promise((resolve) => {
        release = resolve;
      });
      await page.route('**/api/figalize/', async (route) => {
        await held;
        await route.continue();
      });
      try {
        await figalize('каюк');
        await page.waitForFunction(() => document.querySelector('#submit').disabled, null, WAIT);
        assert.equal(await page.textContent('#submit'), 'Офигачиваю…');
        assert.equal(await page.getAttribute('#figalize-form', 'aria-busy'), 'true');
        await shot('08-busy');
        release();
        await resultIs(expected(0, 'каюк'));
        assert.equal(await page.textContent('#submit'), 'Офигачить!');
        assert.equal(await page.isDisabled('#submit'), false);
      } finally {
        release();
        await page.unroute('**/api/figalize/');
      }
    });

    test('when the service cannot be reached a friendly line says so', async () => {
      await page.route('**/api/figalize/', (route) => route.abort('connectionrefused'));
      try {
        await figalize('каюк');
        const error = page.locator('#phrase-error');
        await error.waitFor({ state: 'visible', ...WAIT });
        assert.match(await error.textContent(), /не отвечает/);
        await shot('09-unavailable');
      } finally {
        await page.unroute('**/api/figalize/');
      }
      forgive(/net::ERR_(CONNECTION_REFUSED|FAILED)/);
    });

    test('without the live stream the hint and the counter still follow by polling', async () => {
      const { opened: polling } = await open();
      await polling.route('**/api/history/stream', (route) => route.abort('connectionrefused'));
      await polling.reload({ waitUntil: 'load' });
      await polling.locator('#counter:not(:empty)').waitFor(WAIT);
      const word = freshWord();
      await figalize(word);
      await polling.waitForFunction((w) => document.querySelector('#hint').textContent.includes(w), word, WAIT);
      await polling.close();
      forgive(/net::ERR_(CONNECTION_REFUSED|FAILED)/);
    });

    test('at phone width the page fits without sideways scrolling', async () => {
      await page.setViewportSize({ width: 375, height: 740 });
      await figalize('бунгало');
      await resultIs(expected(0, 'бунгало'));
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${overflow} px wider than the screen`);
      await shot('10-phone');
      await page.setViewportSize({ width: 1280, height: 900 });
    });

    test('the appends are not public: a POST from the page\'s own origin gets the JSON 404', async () => {
      // figalize calls history's append routes directly; the site serves neither, and the
      // ingress routes neither (its own 404 for unknown /api/ paths answers).
      const entry = { original: 'велосипед', figalized: 'Фигосипед' };
      const appends = [
        ['/api/append/', entry],
        ['/api/append/batch/', { entries: [{ id: `site-test-${freshWord()}`, ...entry }] }],
      ];
      for (const [route, body] of appends) {
        const response = await page.request.post(new URL(route, target.url).href, {
          data: body,
          headers: { origin: new URL(target.url).origin },
        });
        assert.equal(response.status(), 404, `POST ${route}`);
        assert.match(response.headers()['content-type'] ?? '', /^application\/json/, `POST ${route}`);
        const error = await response.json();
        assert.deepEqual(Object.keys(error).sort(), ['code', 'data', 'request_id'], `POST ${route}`);
        assert.equal(error.code, 'not_found', `POST ${route}`);
        assert.equal(typeof error.data, 'string', `POST ${route}`);
        assert.ok(typeof error.request_id === 'string' && error.request_id.length > 0, `POST ${route}`);
      }
    });

    test('each service\'s API docs render under their Content-Security-Policy', async () => {
      for (const service of ['figalize', 'history', 'imagizer']) {
        const docs = await context.newPage();
        docs.on('console', (message) => {
          if (message.type() === 'error') problems.push(`${service} docs console: ${message.text()}`);
        });
        docs.on('pageerror', (error) => problems.push(`${service} docs page error: ${error.message}`));
        const response = await docs.goto(new URL(`/api/${service}/docs/`, target.url).href, { waitUntil: 'load' });
        assert.equal(response.status(), 200, `${service} docs`);
        const headers = response.headers();
        assert.match(headers['content-security-policy'] ?? '', /script-src 'self';/, `${service} docs`);
        assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/, `${service} docs`);
        assert.equal(headers['x-content-type-options'], 'nosniff', `${service} docs`);
        // The operations appear once Swagger UI has fetched and rendered the document.
        await docs.locator('.opblock').first().waitFor(WAIT);
        await docs.screenshot({ path: path.join(shots, `12-docs-${service}.png`) });
        await docs.close();
      }
    });

    test('no page broke its Content-Security-Policy or logged an error', () => {
      assert.deepEqual(problems, []);
    });
  });
}
