// The web UI walked as its users walk it, in Debian's Chromium driven by puppeteer-core:
// sign in, find a CI, open its impact graph and follow a node, accept a drift finding, approve
// a change as a reviewer (and find no approve button as a viewer), open the monthly report,
// switch to Chinese. Every page gets a screenshot (CMDB_SCREENSHOTS) and axe-core's check
// (no serious or critical violation); no page may break its Content-Security-Policy.
//   CMDB_URL=http://127.0.0.1:8090 CMDB_TOKENS=data/demo-tokens.json node walk.mjs
import fs from "node:fs";
import path from "node:path";
import puppeteer from "puppeteer-core";

const base = process.env.CMDB_URL;
const tokens = JSON.parse(fs.readFileSync(process.env.CMDB_TOKENS, "utf8"));
const shots = process.env.CMDB_SCREENSHOTS || "build/browser";
fs.mkdirSync(shots, { recursive: true });
const axeSource = fs.readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8");

const failures = [];
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
}

async function api(method, route, token, body) {
  const response = await fetch(base + route, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--lang=en-US"],
});

const cspViolations = [];
async function newPage(context) {
  const page = await context.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/.test(message.text())) cspViolations.push(message.text());
  });
  return page;
}

async function audit(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  // axe runs as a script the page's policy would refuse: injected with the policy bypassed.
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.nodes.length}: ${v.nodes[0].target})`);
  });
  check(violations.length === 0, `${name}: no serious accessibility violation ${violations.join("; ")}`);
}

async function signIn(context, token) {
  const page = await newPage(context);
  await page.setBypassCSP(false);
  await page.goto(`${base}/ui/`);
  check(page.url().includes("/ui/login"), "an anonymous visit is sent to the sign-in page");
  await page.type("#token", token);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  return page;
}

// Puts axe into every document the page loads from now on.
async function withAxe(page) {
  await page.setBypassCSP(true);
  await page.evaluateOnNewDocument(axeSource);
}

try {
  // --- an asset admin ---
  const admin = await browser.createBrowserContext();
  const page = await signIn(admin, tokens.asset_admin);
  await withAxe(page);
  await page.goto(`${base}/ui/`);
  check((await page.$eval("h1", (h) => h.textContent)).includes("Welcome"), "signed in: the home page");
  const cookie = (await page.cookies()).find((c) => c.name === "cmdb_session");
  check(cookie && cookie.httpOnly && cookie.sameSite === "Strict", "the session cookie is HttpOnly and SameSite=Strict");
  await audit(page, "01-home");

  await page.type("#home-q", "shop-db");
  await Promise.all([page.waitForNavigation(), page.click("form[role=search] button")]);
  await audit(page, "02-search");
  await Promise.all([page.waitForNavigation(), page.click("td a[href^='/ui/cis/']")]);
  check((await page.$eval("h1", (h) => h.textContent)).includes("shop-db"), "found shop-db and opened it");
  await audit(page, "03-ci");

  await Promise.all([page.waitForNavigation(), page.click("a.button[href$='/impact']")]);
  check((await page.$("div.graph svg")) !== null, "the impact graph is drawn");
  const before = await page.$eval("h1", (h) => h.textContent);
  const node = await page.$$eval("div.graph svg a", (links) =>
    links.map((a) => a.getAttribute("href") || a.getAttribute("xlink:href")).find((h) => h && !h.startsWith("/ui/cis/11/")));
  check(Boolean(node), "the graph's CIs are links");
  await audit(page, "04-impact");
  await Promise.all([page.waitForNavigation(), page.click(`div.graph svg a[*|href='${node}']`)]);
  const after = await page.$eval("h1", (h) => h.textContent);
  check(after !== before && after.startsWith("Impact of"), `followed a node: ${after.trim()}`);

  // A discovery run that drifts: esx-01's memory.
  const run = await api("POST", "/api/v1/discovery/runs?source=1", tokens.discovery_agent, {
    items: [{ identity: { serial: "CZJ91001" }, attributes: { memory_mb: 262144 } }],
  });
  // The run is reconciled in the background: wait for it.
  for (let i = 0; i < 200; i++) {
    const state = (await api("GET", `/api/v1/discovery/runs/${run.id}`, tokens.asset_admin)).state;
    if (state === "succeeded" || state === "failed") break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await page.goto(`${base}/ui/drift`);
  const row = await page.$("tbody tr");
  check(row !== null, "the drift queue lists the finding");
  await audit(page, "05-drift");
  const id = await page.$eval("tbody tr", (tr) => tr.id);
  await page.click(`#${id} button`);  // accept, in place
  await page.waitForFunction((rowId) => document.querySelector(`#${rowId} .badge`)?.textContent === "accepted", {}, id);
  check(true, "accepted the finding in place");
  await page.screenshot({ path: path.join(shots, "06-drift-accepted.png"), fullPage: true });

  // --- a change to review ---
  const change = await api("POST", "/api/v1/changes", tokens.asset_admin, {
    title: "Upgrade shop-db to PostgreSQL 16", risk: "high", ci_ids: [11],
    planned_start: new Date(Date.now() + 86400e3).toISOString(),
    planned_end: new Date(Date.now() + 90000e3).toISOString(),
  });
  await api("POST", `/api/v1/changes/${change.id}/submit`, tokens.asset_admin);
  const viewerContext = await browser.createBrowserContext();
  const viewer = await signIn(viewerContext, tokens.viewer);
  await viewer.goto(`${base}/ui/changes/${change.id}`);
  check((await viewer.$("form[action$='/approve']")) === null, "a viewer is offered no approve button");
  const reviewerContext = await browser.createBrowserContext();
  const reviewer = await signIn(reviewerContext, tokens.change_reviewer);
  await withAxe(reviewer);
  await reviewer.goto(`${base}/ui/changes/${change.id}`);
  await audit(reviewer, "07-change");
  await reviewer.type("#reason", "CAB 2026-12");
  await Promise.all([reviewer.waitForNavigation(), reviewer.click("form[action$='/approve'] button[type=submit]:not([formaction])")]);
  check((await reviewer.$eval("h1 .badge", (b) => b.textContent)) === "approved", "the reviewer approved the change");
  await audit(reviewer, "08-change-approved");

  // --- an incident, escalated by first line ---
  const incident = await api("POST", "/api/v1/incidents", tokens.incident_handler, {
    title: "Checkout times out", severity: 2, ci_ids: [11],
  });
  const lineContext = await browser.createBrowserContext();
  const line = await signIn(lineContext, tokens.incident_handler);
  await withAxe(line);
  await line.goto(`${base}/ui/incidents/${incident.id}`);
  await audit(line, "12-incident");
  await line.type("#escalate-reason", "query plan regression");
  await Promise.all([line.waitForNavigation(), line.click("form[action$='/escalate'] button")]);
  const tier = await line.$eval("tbody tr:nth-child(2) td", (td) => td.textContent.trim());
  check(tier === "2", `first line escalated the incident to tier ${tier}`);
  check((await line.$("form[action$='/escalate']")) === null, "first line is offered no escalation of a tier-2 incident");
  await audit(line, "13-incident-escalated");

  // --- the other pages, as admin ---
  const adminContext = await browser.createBrowserContext();
  const root = await signIn(adminContext, tokens.admin);
  await withAxe(root);
  for (const [name, route] of [["14-audit", "/ui/audit"], ["15-knowledge", "/ui/knowledge"],
                               ["16-quality", "/ui/quality"], ["17-admin", "/ui/admin"],
                               ["18-incidents", "/ui/incidents"], ["19-changes", "/ui/changes"]]) {
    const response = await root.goto(`${base}${route}`);
    check(response.status() === 200, `${route} answers 200`);
    await audit(root, name);
  }

  // --- the quality group: a key-user call and a complaint ---
  await api("POST", "/api/v1/key-users", tokens.quality_auditor, { name: "王芳", service_ids: [1] });
  const qualityContext = await browser.createBrowserContext();
  const quality = await signIn(qualityContext, tokens.quality_auditor);
  await withAxe(quality);
  await quality.goto(`${base}/ui/quality`);
  await quality.$eval("#cb-at", (input) => { input.value = "2026-01-05T09:00"; });  // the date-time control
  await quality.type("#cb-comment", "满意");
  await Promise.all([quality.waitForNavigation(), quality.click("form[action='/ui/callbacks'] button")]);
  check((await quality.$eval("[role=status]", (p) => p.textContent)) === "Callback recorded.", "recorded a key-user call");
  await quality.type("#c-title", "No one called back");
  await quality.type("#c-complainant", "王芳");
  await quality.type("#c-owner", "quality");
  await quality.$eval("#c-due", (input) => { input.value = "2030-12-31"; });
  await quality.type("#c-note", "called twice");
  await Promise.all([quality.waitForNavigation(), quality.click("form[action='/ui/complaints'] button")]);
  check((await quality.$$eval("tbody tr", (rows) => rows.some((r) => r.textContent.includes("No one called back")))),
        "opened a complaint");
  await audit(quality, "20-quality");

  // --- one's own tokens ---
  await quality.goto(`${base}/ui/tokens`);
  await quality.type("#token-name", "laptop");
  await Promise.all([quality.waitForNavigation(), quality.click("form[action='/ui/tokens'] button")]);
  const secret = await quality.$eval("[role=status] code", (c) => c.textContent);
  check(/^cmdb_\d+_/.test(secret), "a new token is shown once");
  await audit(quality, "21-tokens");
  const me = await fetch(`${base}/api/v1/me`, { headers: { Authorization: `Bearer ${secret}` } });
  check(me.status === 200, "the new token works");
  quality.on("dialog", (dialog) => dialog.accept());
  const rows = await quality.$$("tbody tr");
  const laptop = await quality.$$eval("tbody tr", (trs) => trs.findIndex((tr) => tr.textContent.includes("laptop")));
  await Promise.all([quality.waitForNavigation(), quality.click(`tbody tr:nth-child(${laptop + 1}) button.danger`)]);
  const revoked = await fetch(`${base}/api/v1/me`, { headers: { Authorization: `Bearer ${secret}` } });
  check(rows.length >= 1 && revoked.status === 401, "revoking it signs it out");

  // --- the audit dashboard after a run ---
  const auditRun = await api("POST", "/api/v1/audit/runs", tokens.asset_admin, {});
  for (let i = 0; i < 200; i++) {
    const state = (await api("GET", `/api/v1/audit/runs/${auditRun.id}`, tokens.asset_admin)).state;
    if (state === "succeeded" || state === "failed") break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await root.goto(`${base}/ui/audit`);
  check((await root.$("figure svg polyline, figure svg circle")) !== null, "the audit dashboard draws the score trend");
  check((await root.$$("tbody tr")).length > 0, "the audit dashboard lists rules and findings");
  await audit(root, "22-audit-after-run");

  // --- the monthly report ---
  await reviewer.goto(`${base}/ui/reports`);
  await audit(reviewer, "09-reports");
  await Promise.all([reviewer.waitForNavigation(), reviewer.click("form.filters button")]);
  check((await reviewer.$eval("h1", (h) => h.textContent)).startsWith("Operations review"), "opened the monthly report");
  await reviewer.screenshot({ path: path.join(shots, "10-operations.png"), fullPage: true });

  // --- in Chinese, remembered ---
  await page.goto(`${base}/ui/cis`);
  await Promise.all([page.waitForNavigation(), page.click("a[lang=zh]")]);
  check((await page.$eval("h1", (h) => h.textContent)) === "配置项", "switched to Chinese");
  await page.goto(`${base}/ui/drift`);
  check((await page.$eval("h1", (h) => h.textContent)) === "配置偏差审核", "the language is remembered");
  await audit(page, "11-drift-zh");

  check(cspViolations.length === 0, `no Content-Security-Policy violation ${cspViolations.slice(0, 3).join(" | ")}`);
} catch (error) {
  check(false, `the walk stopped: ${error.stack || error}`);
} finally {
  await browser.close();
}
console.log(failures.length === 0 ? "browser walk: every step passed" : `browser walk: ${failures.length} failed`);
process.exit(failures.length === 0 ? 0 : 1);
