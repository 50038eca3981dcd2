// Drives the console in headless Chromium (Debian's, through playwright-core) against a running
// gatewayd, as an operator would: log in, create and start a volume, see its bricks online, see
// its elastic section refuse a bad brick, make an S3 key, export the volume over NFS, add an
// SMB user and share, and watch a brick go down on the dashboard after a kill -9 and come back,
// a frozen one (SIGSTOP) too; then every page again at a phone's width (420 px), which must not
// scroll sideways. Screenshots of every step go to $ARTIFACTS, named with the width they were
// taken at (1400 px, then 420 px).
//
// Environment: CONSOLE_URL (gatewayd's API address), ADMIN_PASSWORD, BRICK_ROOT (where the
// new volume's bricks go), ARTIFACTS, CHROMIUM (default /usr/bin/chromium). Playwright gives
// the browser a fresh profile of its own and removes it on close.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const url = process.env.CONSOLE_URL;
const password = process.env.ADMIN_PASSWORD;
const brickRoot = process.env.BRICK_ROOT;
const artifacts = process.env.ARTIFACTS;
if (!url || !password || !brickRoot || !artifacts) {
  console.error('CONSOLE_URL, ADMIN_PASSWORD, BRICK_ROOT and ARTIFACTS must be set');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
let step = 0;
const WIDE = 1400;
const PHONE = 420;
const page = await browser.newPage({ viewport: { width: WIDE, height: 900 } });
const shot = async (name) => {
  step += 1;
  const w = page.viewportSize().width;
  await page.screenshot({ path: join(artifacts, `${String(step).padStart(2, '0')}-${name}-${w}px.png`), fullPage: true });
};
/// The page fits the viewport's width: nothing makes it scroll sideways.
async function fitsWidth(what) {
  const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  if (scroll > inner) throw new Error(`${what} is ${scroll} px wide in a ${inner} px window`);
}
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));

async function main() {
  await page.goto(url + '/');
  await page.waitForSelector('form.login');
  await shot('login');

  // A wrong password is refused on the page.
  await page.fill('input[name=password]', 'not-the-password');
  await page.click('form.login button[type=submit]');
  await page.waitForSelector('#login-error:has-text("wrong user or password")');

  await page.fill('input[name=password]', password);
  await page.click('form.login button[type=submit]');
  await page.waitForSelector('nav >> text=Dashboard');
  await page.waitForSelector('#bricks tr[data-brick]');
  await shot('dashboard');

  // Create and start a volume.
  await page.click('nav >> text=Volumes');
  await page.waitForSelector('#create-volume');
  await page.fill('#create-volume input[name=name]', 'web');
  await page.fill('#create-volume textarea[name=bricks]', `127.0.0.1:${brickRoot}/w1\n127.0.0.1:${brickRoot}/w2`);
  await page.click('#create-volume button[type=submit]');
  await page.waitForSelector('tr[data-volume="web"]');
  await page.click('tr[data-volume="web"] >> text=Start');
  await page.waitForSelector('tr[data-volume="web"] .badge:has-text("started")', { timeout: 30000 });
  await shot('volume-started');

  // Its page shows both bricks online.
  await page.click('tr[data-volume="web"] a');
  await page.waitForFunction(
    () => document.querySelectorAll('#bricks [data-state="online"]').length === 2,
    null,
    { timeout: 30000 },
  );
  await shot('volume-bricks-online');

  // A distribute volume has nothing to heal, and says so (no "null" where the heal view goes).
  await page.waitForSelector('#heal-note:has-text("nothing to heal")');
  if (/\bnull\b/.test(await page.textContent('main'))) throw new Error('the volume page shows "null"');

  // The elastic section shows the rebalance status (or why there is none); a bad add-brick is
  // refused with the reason and leaves the volume as it was.
  await page.waitForSelector('#elastic #rebalance-status :is(#rebalance, p)');
  await page.fill('#add-brick textarea[name=bricks]', 'not-a-brick');
  await page.click('#add-brick button[type=submit]');
  await page.waitForSelector('.notice.error');
  await shot('volume-elastic');
  if ((await page.$$('#bricks tbody tr')).length !== 2) throw new Error('a refused add-brick changed the bricks');

  // An option, picked from the list of settable options with its description and default: a
  // bad value is refused with the reason, a good one is listed.
  await page.waitForSelector('#set-option select[name=key] option[value="cluster.quorum-type"]', { state: 'attached' });
  await page.selectOption('#set-option select[name=key]', 'cluster.lookup-unhashed');
  await page.waitForSelector('#option-help:has-text("Default: on")');
  await page.waitForSelector('#option-values option[value="auto"]', { state: 'attached' });
  await page.click('#option-table summary');
  await page.waitForSelector('#option-table tr[data-settable="nfs.disable"]');
  await page.fill('#set-option input[name=value]', 'sometimes');
  await page.click('#set-option button[type=submit]');
  await page.waitForSelector('.notice.error:has-text("cluster.lookup-unhashed")');
  await page.selectOption('#set-option select[name=key]', 'cluster.lookup-unhashed');
  await page.fill('#set-option input[name=value]', 'auto');
  await page.click('#set-option button[type=submit]');
  await page.waitForSelector('.notice.ok:has-text("stop and start")');
  await page.waitForSelector('#options tr[data-option="cluster.lookup-unhashed"] >> text=auto');
  await shot('volume-option');

  // An S3 key: the secret is shown once.
  await page.click('nav >> text=S3 keys');
  await page.fill('#create-key input[name=name]', 'console-key');
  await page.click('#create-key button[type=submit]');
  await page.waitForSelector('#new-key pre:has-text("aws_secret_access_key")');
  await page.waitForSelector('tr[data-key="console-key"]');
  await shot('s3-key');

  // An NFS export, read-only.
  await page.click('nav >> text=NFS exports');
  await page.fill('#add-export input[name=path]', '/web');
  await page.check('#add-export input[name=ro]');
  await page.click('#add-export button[type=submit]');
  await page.waitForSelector('tr[data-export="/web"] >> text=ro');
  await shot('nfs-export');

  // An SMB user and a share of a directory of the new volume for that user.
  await page.click('nav >> text=SMB shares');
  await page.fill('#add-smb-user input[name=user]', 'alice');
  await page.fill('#add-smb-user input[name=password]', 'alice-console-pw');
  await page.click('#add-smb-user button[type=submit]');
  await page.waitForSelector('tr[data-smb-user="alice"]');
  await page.fill('#add-share input[name=share]', 'webshare');
  await page.selectOption('#add-share select[name=volume]', 'web');
  await page.fill('#add-share input[name=path]', '/docs');
  await page.fill('#add-share input[name=users]', 'alice');
  await page.click('#add-share button[type=submit]');
  await page.waitForSelector('tr[data-share="webshare"]', { timeout: 30000 });
  await shot('smb-share');

  // Errors reach the operator: a share of a volume that does not exist.
  await page.fill('#add-share input[name=share]', 'nowhere');
  await page.evaluate(() => {
    const s = document.querySelector('#add-share select[name=volume]');
    s.append(new Option('novol', 'novol'));
    s.value = 'novol';
  });
  await page.click('#add-share button[type=submit]');
  await page.waitForSelector('.notice.error:has-text("volume novol does not exist")');

  // kill -9 of a brick of the new volume: the dashboard shows it down, then back.
  await page.click('nav >> text=Dashboard');
  const row = 'tr[data-brick="web-client-0"]';
  await page.waitForSelector(`${row} [data-state="online"]`, { timeout: 30000 });
  const pid = Number((await page.textContent(`${row} td:nth-child(5)`)).trim());
  if (!(pid > 1)) throw new Error(`no pid for web-client-0 on the dashboard`);
  process.kill(pid, 'SIGKILL');
  await page.waitForSelector('#events li.down:has-text("web-client-0")', { timeout: 30000 });
  await shot('brick-down');
  await page.waitForSelector('#events li.up:has-text("web-client-0")', { timeout: 60000 });
  await page.waitForSelector(`${row} [data-state="online"]`, { timeout: 30000 });
  await shot('brick-back');

  // A frozen brick (SIGSTOP: its port still accepts connections, it answers nothing) is down on
  // the dashboard within ping-timeout (4 s for vol here), and online again once it answers.
  const frozen = 'tr[data-brick="vol-client-1"]';
  const fpid = Number((await page.textContent(`${frozen} td:nth-child(5)`)).trim());
  if (!(fpid > 1)) throw new Error(`no pid for vol-client-1 on the dashboard`);
  process.kill(fpid, 'SIGSTOP');
  try {
    await page.waitForSelector(`${frozen} [data-state="down"]`, { timeout: 30000 });
    await shot('brick-frozen');
  } finally {
    process.kill(fpid, 'SIGCONT');
  }
  await page.waitForSelector(`${frozen} [data-state="online"]`, { timeout: 60000 });

  // The chart legends show the newest rates, not uPlot's "--" for "no point under the cursor".
  await page.waitForFunction(() => {
    const v = [...document.querySelectorAll('.u-legend .u-value')].map((e) => e.textContent.trim());
    return v.length >= 8 && v.every((t) => t && t !== '--');
  }, null, { timeout: 15000 });

  // A phone: every page fits 420 px.
  await page.setViewportSize({ width: PHONE, height: 900 });
  for (const [hash, ready, name] of [
    ['#/dashboard', '#bricks tr[data-brick]', 'dashboard'],
    ['#/volumes', 'tr[data-volume="web"]', 'volumes'],
    ['#/volumes/web', '#bricks [data-state="online"]', 'volume'],
    ['#/volumes/vol', '#heal', 'volume-replicated'],
    ['#/s3', 'tr[data-key="console-key"]', 's3-keys'],
    ['#/nfs', 'tr[data-export="/web"]', 'nfs-exports'],
    ['#/smb', 'tr[data-share="webshare"]', 'smb-shares'],
    ['#/log', '#action-log tbody tr', 'log'],
  ]) {
    await page.evaluate((h) => { location.hash = h; }, hash);
    await page.waitForSelector(ready, { timeout: 30000 });
    await page.waitForTimeout(300);
    await fitsWidth(name);
    await shot(name);
  }
  await page.setViewportSize({ width: WIDE, height: 900 });

  // Logging out ends the session: a reload shows the login form.
  await page.click('#logout');
  await page.waitForSelector('form.login');
  await page.reload();
  await page.waitForSelector('form.login');
  if (errors.length) throw new Error(`errors on the page: ${errors.join('; ')}`);
  console.log(`console ok: ${step} screenshots in ${artifacts}`);
}

try {
  await main();
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
