// Drives the pyfacerig viewer page in a real headless Chromium (Debian's /usr/bin/chromium via
// playwright-core; no browser is downloaded) with every request outside 127.0.0.1 refused.
//   node viewer_check.mjs URL OUT_DIR CLIP_NAME
// Saves screenshots to OUT_DIR (neutral, jawOpen, clip, page) and prints a JSON report.
import { chromium } from 'playwright-core';

const [url, outDir, clipName] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-default-apps', '--disable-sync', '--no-first-run', '--disable-extensions',
    '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
});
const report = { blocked: [], errors: [] };
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 860 }, serviceWorkers: 'block' });
  // The network is "off": only the local server answers.
  await context.route('**/*', (route) => {
    const target = new URL(route.request().url());
    if (target.hostname === '127.0.0.1') return route.continue();
    report.blocked.push(target.href);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('console', (message) => { if (message.type() === 'error') report.errors.push(message.text()); });
  page.on('pageerror', (error) => report.errors.push(String(error)));
  await page.goto(url);
  await page.waitForFunction(() => window.pyfacerigViewer && (window.pyfacerigViewer.state.ready || window.pyfacerigViewer.state.error),
    null, { timeout: 120000 });
  report.error = await page.evaluate(() => window.pyfacerigViewer.state.error);
  if (report.error) throw new Error(report.error);
  await page.waitForFunction(() => [...document.querySelectorAll('#textures img')].every((img) => img.complete && img.naturalWidth > 0));
  const canvas = page.locator('#viewport canvas');
  await page.waitForTimeout(500);
  await page.screenshot({ path: `${outDir}/page.png` });
  await page.evaluate(() => { document.getElementById('hud').style.visibility = 'hidden'; });  // the canvas alone
  await canvas.screenshot({ path: `${outDir}/neutral.png` });

  await page.locator('#shape-jawOpen').fill('1');          // the real slider, real input events
  await page.waitForFunction(() => window.pyfacerigViewer.state.weights.jawOpen === 1);
  await page.waitForTimeout(500);
  await canvas.screenshot({ path: `${outDir}/jawOpen.png` });
  await page.locator('#shape-jawOpen').fill('0');

  const framesBefore = await page.evaluate(() => window.pyfacerigViewer.state.frames);
  await page.locator(`[id="play-${clipName}"]`).click();
  // Playing: the clock runs and frames are drawn (software WebGL on a busy machine may be slow).
  // The state is read in the same evaluation that sees it playing: the clip loops, so a second
  // read on a loaded machine can land after the clock has wrapped back to 0.
  const playing = await page.waitForFunction((before) => {
    const state = window.pyfacerigViewer.state;
    return state.clipTime > 0.2 && state.frames >= before + 3
      && { clip: state.clip, time: state.clipTime, paused: state.paused, frames: state.frames };
  }, framesBefore, { timeout: 120000 });
  report.playing = await playing.jsonValue();
  report.playing.framesBefore = framesBefore;
  // Scrub to 1 s, where the clip opens the jaw fully: the shot shows that exact pose.
  await page.locator(`[id="scrub-${clipName}"]`).fill('1');
  await page.waitForFunction(() => window.pyfacerigViewer.state.paused && Math.abs(window.pyfacerigViewer.state.clipTime - 1) < 1e-6);
  await page.waitForTimeout(500);
  report.jawOpenSlider = await page.locator('#shape-jawOpen').inputValue();   // sliders follow the clip
  await canvas.screenshot({ path: `${outDir}/clip.png` });
  await page.evaluate(() => { document.getElementById('hud').style.visibility = 'visible'; });
  await page.screenshot({ path: `${outDir}/page_clip.png` });

  report.groups = await page.$$eval('details.group summary', (nodes) => nodes.map((n) => [n.children[0].textContent, Number(n.children[1].textContent)]));
  report.sliders = await page.$$eval('#shape-groups input[type=range]', (nodes) => nodes.map((n) => n.id.slice('shape-'.length)));
  report.textures = await page.$$eval('#textures img', (nodes) => nodes.map((n) => [n.alt, n.naturalWidth, n.naturalHeight]));
  report.figures = await page.locator('#figures').innerText();
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
