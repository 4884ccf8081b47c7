// Browser test of the dashboard (GET / on the admin listener), ctest `browser_dashboard`.
//
// Real pieces only: three upstreams (Node http servers on port 0), the real daemon
// ($FIGSHIFT_BIN) with an admin token, a load generator with many Basic-auth users
// for the whole test, and Debian's headless Chromium (/usr/bin/chromium, or
// $CHROMIUM) driven by playwright-core. Through the page it enters the token,
// starts a ramp to 100 % over 6 s with the form, checks that the split the page
// shows rises and that traffic appears on B1 and B2, then rolls back with the
// button and sees the split at 0. Screenshots go to $FIGSHIFT_SCREENSHOT_DIR
// (the build dir): dashboard.png (mid-migration) and dashboard-rollback.png.
//
// Environment: FIGSHIFT_BIN (required), CHROMIUM, FIGSHIFT_SCREENSHOT_DIR, KEEP_TMP=1.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { chromium } from "playwright-core";

const TOKEN = "browser-test-token-" + Math.random().toString(36).slice(2);
const TOKEN_ENV = "FIGSHIFT_BROWSER_TEST_TOKEN";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOT_DIR = process.env.FIGSHIFT_SCREENSHOT_DIR || process.cwd();
const USERS = Array.from({ length: 300 }, (_, i) => `user${i}`);
const PATHS = ["/orders/", "/payments/", "/other/"];

// ---- upstreams ------------------------------------------------------------------------
function startUpstream(name) {
  const counts = { requests: 0 };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      counts.requests++;
      const body = JSON.stringify({ upstream: name, path: req.url });
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () =>
      resolve({ name, counts, server, url: `http://127.0.0.1:${server.address().port}` }));
  });
}

// ---- the daemon --------------------------------------------------------------------
async function startDaemon(dir, upstreams) {
  const bin = process.env.FIGSHIFT_BIN;
  assert.ok(bin, "FIGSHIFT_BIN must name the figshift binary");
  const seed = {
    data: [
      ...upstreams.map((u) => ({ key: `APIGW_${u.name}_URL`, value: u.url })),
      { key: "route:/orders", value: "B1 /v2/orders" },
      { key: "route:/payments", value: "B2" },
      { key: "traffic-split", value: "0" },
    ],
  };
  fs.writeFileSync(path.join(dir, "seed.json"), JSON.stringify(seed, null, 2));
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({
    listen: [{ address: "127.0.0.1", port: 0 }],
    admin: { address: "127.0.0.1", port: 0, token_env: TOKEN_ENV },
    store: { backend: "file", path: "kvs.json", seed: "seed.json" },
    workers: 2,
    access_log: { enabled: false },
  }, null, 2));
  const proc = spawn(bin, ["serve", "--config", path.join(dir, "config.json")], {
    cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, [TOKEN_ENV]: TOKEN },
  });
  const log = [];
  let adminPort = null, trafficPort = null;
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("figshift not ready in 15 s:\n" + log.join(""))), 15_000);
    let buf = "";
    proc.stderr.on("data", (chunk) => {
      log.push(chunk.toString());
      buf += chunk.toString();
      let m;
      if (!adminPort && (m = /admin API listening on 127\.0\.0\.1:(\d+)/.exec(buf))) adminPort = Number(m[1]);
      if (!trafficPort && (m = /listening for traffic on 127\.0\.0\.1:(\d+)/.exec(buf))) trafficPort = Number(m[1]);
      if (adminPort && trafficPort) { clearTimeout(timer); resolve(); }
    });
    proc.stdout.on("data", (chunk) => log.push(chunk.toString()));
    proc.on("exit", (code) => { clearTimeout(timer); reject(new Error(`figshift exited (${code}):\n` + log.join(""))); });
  });
  await ready;
  return { proc, log, adminPort, trafficPort };
}

// ---- load generator ---------------------------------------------------------------
function startLoad(port, loops = 6, pauseMs = 25) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: loops });
  const stats = { sent: 0, byUpstream: {}, failures: [] };
  let running = true;
  const one = (user, p) => new Promise((resolve) => {
    const auth = "Basic " + Buffer.from(`${user}:pw-${user}`).toString("base64");
    const req = http.request({ host: "127.0.0.1", port, path: p, agent, headers: { Authorization: auth } }, (res) => {
      res.resume();
      res.on("end", () => {
        const up = res.headers["x-figshift-upstream"] || "?";
        stats.byUpstream[up] = (stats.byUpstream[up] || 0) + 1;
        if (res.statusCode !== 200) stats.failures.push(`${p}: ${res.statusCode}`);
        resolve();
      });
    });
    req.on("error", (e) => { stats.failures.push(`${p}: ${e.message}`); resolve(); });
    req.end();
  });
  const loop = async (k) => {
    let i = k;
    while (running) {
      const user = USERS[(i * 7919) % USERS.length];
      const p = PATHS[i % PATHS.length] + (i % 1000);
      i += loops;
      stats.sent++;
      await one(user, p);
      await sleep(pauseMs);
    }
  };
  const done = Promise.all(Array.from({ length: loops }, (_, k) => loop(k)));
  return { stats, stop: async () => { running = false; await done; agent.destroy(); } };
}

function plainGet(port, p, headers = {}) {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: p, headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    }).on("error", reject);
  });
}

async function until(what, fn, timeoutMs = 15_000, everyMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

test("dashboard: live split, traffic per upstream, ramp and rollback from the page", { timeout: 150_000 }, async (t) => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh (installs Debian's chromium)`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "figshift-browser-"));
  const cleanups = [];
  t.after(async () => {
    for (const f of cleanups.reverse()) await f().catch((e) => console.error("cleanup:", e.message));
    if (!process.env.KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const ups = await Promise.all(["A", "B1", "B2"].map(startUpstream));
  cleanups.push(async () => ups.forEach((u) => u.server.close()));
  ups.forEach((u) => u.server.closeIdleConnections?.());

  const daemonDir = path.join(tmp, "daemon");
  fs.mkdirSync(daemonDir);
  const daemon = await startDaemon(daemonDir, ups);
  cleanups.push(async () => {
    if (daemon.proc.exitCode === null) {
      daemon.proc.kill("SIGTERM");
      await Promise.race([new Promise((r) => daemon.proc.once("exit", r)), sleep(15_000)]);
      if (daemon.proc.exitCode === null) daemon.proc.kill("SIGKILL");
    }
  });
  const fail = (msg) => { throw new Error(msg + "\n---- figshift log ----\n" + daemon.log.join("").slice(-6000)); };

  // The page itself: no token needed, strict headers, no data and no token in it.
  const pageRes = await plainGet(daemon.adminPort, "/");
  assert.equal(pageRes.status, 200);
  assert.equal(pageRes.headers["content-type"], "text/html; charset=utf-8");
  assert.equal(pageRes.headers["cache-control"], "no-store");
  const csp = pageRes.headers["content-security-policy"] || "";
  for (const part of ["default-src 'none'", "connect-src 'self'", "script-src 'self' 'unsafe-inline'"])
    assert.ok(csp.includes(part), `CSP ${JSON.stringify(csp)} lacks ${part}`);
  assert.ok(!pageRes.body.includes(TOKEN));
  assert.ok(!/https?:\/\//.test(pageRes.body.replace(/http:\/\/www\.w3\.org\/[^"]*/g, "")),
            "the page references no external URL");
  assert.equal((await plainGet(daemon.adminPort, "/admin/status")).status, 401, "the data still needs the token");

  const load = startLoad(daemon.trafficPort);
  cleanups.push(() => load.stop());

  const userDataDir = path.join(tmp, "chromium-profile");
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1366, height: 768 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  cleanups.push(() => context.close());
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  // The first poll's 401 (before the token is entered) is logged by Chromium itself; nothing else may be.
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 401/.test(m.text())) problems.push("console: " + m.text());
  });
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("request", (r) => {
    if (!r.url().startsWith(`http://127.0.0.1:${daemon.adminPort}/`)) problems.push("foreign request: " + r.url());
  });

  await page.goto(`http://127.0.0.1:${daemon.adminPort}/`);
  // First poll gets a 401: the page asks for the token once.
  await page.locator("#token-dialog[open]").waitFor({ timeout: 10_000 });
  await page.fill("#token-input", TOKEN);
  await page.click("#token-submit");
  await until("the page to connect", async () =>
    (await page.getAttribute("#conn-status", "data-state")) === "ok", 10_000);
  assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), "figshift.adminToken"), TOKEN);

  // Baseline: split 0, traffic on A only.
  await until("a few samples of traffic on A", async () => {
    const peak = JSON.parse(await page.getAttribute("#rps-chart", "data-peak"));
    return peak.A > 0 && Number(await page.getAttribute("#rps-chart", "data-samples")) >= 2;
  });
  assert.equal(await page.getAttribute("#split-value", "data-value"), "0");
  assert.equal(JSON.parse(await page.getAttribute("#rps-chart", "data-peak")).B1 || 0, 0, "no B1 traffic before the ramp");

  // Start the ramp with the page's form: 0 -> 100 % over 6 s.
  await page.fill("#ramp-percent", "100");
  await page.fill("#ramp-seconds", "6");
  await page.click("#ramp-submit");
  await until("the ramp confirmation", async () =>
    /ramp started/.test(await page.textContent("#action-message")), 5_000, 100);
  // The target shows once the page has polled the new status (every second).
  await until("the target to show 100 %", async () =>
    (await page.getAttribute("#target-value", "data-value")) === "100", 5_000, 100);

  const seen = [];
  let midShot = false;
  await until("the split chart to reach 100 %", async () => {
    const v = Number(await page.getAttribute("#split-chart", "data-latest-split"));
    if (seen[seen.length - 1] !== v) seen.push(v);
    if (!midShot && v >= 40 && v < 100) {
      midShot = true;
      assert.equal(await page.getAttribute("#ramp-progress", "data-active"), "true");
      assert.equal(await page.textContent("#ramp-state"), "ramp in progress");
    }
    return v === 100;
  }, 20_000, 150);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `split shown must rise: ${seen}`);
  assert.ok(seen.some((v) => v > 0 && v < 100), `intermediate split values are shown during the ramp: ${seen}`);
  assert.equal(await page.getAttribute("#split-chart", "data-max-split"), "100");
  assert.equal(await page.getAttribute("#split-chart", "data-min-split"), "0");

  // Traffic moves: B1 (/orders) and B2 (/payments) get requests per second on the chart.
  await until("B1 and B2 traffic on the chart", async () => {
    const latest = JSON.parse(await page.getAttribute("#rps-chart", "data-latest"));
    return latest.B1 > 0 && latest.B2 > 0 && latest;
  }, 10_000);
  await sleep(2500);  // a few more samples at 100 % for the screenshot
  const err = JSON.parse(await page.getAttribute("#error-chart", "data-latest"));
  for (const name of ["A", "B1", "B2"]) assert.equal(err[name], 0, `error rate of ${name}: ${JSON.stringify(err)}`);
  assert.equal(await page.locator("#upstreams-table tbody tr").count(), 3);
  const share = JSON.parse(await page.getAttribute("#share-bar", "data-share"));
  assert.ok(share.B1 > 0.1 && share.B2 > 0.1 && share.A > 0.1, `share of requests at 100 %: ${JSON.stringify(share)}`);
  assert.ok(Number(await page.getAttribute("#group-share", "data-new")) > 0.5, "most requests come from the new group");
  await page.screenshot({ path: path.join(SHOT_DIR, "dashboard.png") });

  // The token is never shown.
  const visible = await page.evaluate(() => document.documentElement.outerHTML + document.body.innerText);
  assert.ok(!visible.includes(TOKEN), "the page must not show the token");

  // Roll back: button, confirmation, split 0 on the page and in the daemon.
  await page.click("#rollback-button");
  await page.locator("#confirm-dialog[open]").waitFor({ timeout: 5_000 });
  await page.click("#confirm-yes");
  await until("the split to show 0", async () =>
    (await page.getAttribute("#split-value", "data-value")) === "0" &&
    (await page.getAttribute("#split-chart", "data-latest-split")) === "0", 10_000, 100);
  assert.equal(await page.getAttribute("#target-value", "data-value"), "0");
  const status = JSON.parse((await plainGet(daemon.adminPort, "/admin/status", { Authorization: "Bearer " + TOKEN })).body);
  assert.equal(status.split, 0);
  assert.equal(status.ramp, null);
  await until("B1 traffic to stop on the chart", async () => {
    const latest = JSON.parse(await page.getAttribute("#rps-chart", "data-latest"));
    return latest.B1 === 0 && latest.B2 === 0 && latest.A > 0;
  }, 10_000);
  await sleep(1500);
  await page.screenshot({ path: path.join(SHOT_DIR, "dashboard-rollback.png") });

  // A guard trip (issue #16) is shown prominently with its reason: written here as
  // the guard writes it (test_guard.py shows the guard writing it under real failures).
  assert.equal(await page.isVisible("#guard-banner"), false, "no trip banner before a trip");
  const trip = JSON.stringify({ at_ms: Date.now(), metric: "error_ratio", value: 0.3, threshold: 0.05,
                                upstream: "B1", window_s: 30, requests: 812 });
  const put = await new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: daemon.adminPort, method: "PUT", path: "/admin/kv/guard-tripped",
                               headers: { Authorization: "Bearer " + TOKEN, "Content-Length": Buffer.byteLength(trip) } },
                             (res) => { res.resume(); res.on("end", () => resolve(res.statusCode)); });
    req.on("error", reject);
    req.end(trip);
  });
  assert.equal(put, 200);
  await until("the guard banner", async () => page.isVisible("#guard-banner"), 5_000, 100);
  const bannerText = await page.textContent("#guard-banner");
  assert.match(bannerText, /Guard tripped/);
  assert.match(bannerText, /error ratio on B1 was 30\.0 %/);
  assert.match(bannerText, /threshold 5\.0 %/);
  await page.screenshot({ path: path.join(SHOT_DIR, "dashboard-guard-tripped.png") });

  await load.stop();
  if (load.stats.failures.length) fail(`load generator failures: ${load.stats.failures.slice(0, 5)}`);
  assert.ok(load.stats.byUpstream.B1 > 0 && load.stats.byUpstream.B2 > 0, JSON.stringify(load.stats.byUpstream));
  assert.deepEqual(problems, [], "no console errors, CSP violations or foreign requests");
  console.log(`load: ${load.stats.sent} requests ${JSON.stringify(load.stats.byUpstream)}; split shown: ${seen.join(" → ")}`);
  console.log(`screenshots: ${path.join(SHOT_DIR, "dashboard.png")}, ${path.join(SHOT_DIR, "dashboard-rollback.png")}`);
});
