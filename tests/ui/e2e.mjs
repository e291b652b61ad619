// End-to-end test of hearth's chat page in headless Chromium, against a
// running `hearth serve`. Run by crates/hearth-cli/tests/ui.rs:
//   HEARTH_ADDR=127.0.0.1:PORT HEARTH_UI_MODELS=first,second node tests/ui/e2e.mjs
// HEARTH_UI_SCREENSHOTS=DIR also writes ui-light.png, ui-dark.png and
// ui-narrow.png there. Exits non-zero on the first failed check and prints
// one `measure:` line per measurement.
import { chromium } from "playwright-core";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { createRequire } from "node:module";

const addr = process.env.HEARTH_ADDR;
const [model1, model2] = (process.env.HEARTH_UI_MODELS || "").split(",");
if (!addr || !model1 || !model2) throw new Error("set HEARTH_ADDR and HEARTH_UI_MODELS=first,second");
const base = `http://${addr}`;
const shots = process.env.HEARTH_UI_SCREENSHOTS;
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

// A failed check is reported and the run goes on; the exit status is 1
// when any failed.
const failed = [];
function check(ok, what) {
  console.log((ok ? "ok: " : "FAILED: ") + what);
  if (!ok) failed.push(what);
}
// Polls `fn` in the page (page.waitForFunction would need 'unsafe-eval',
// which the page's CSP refuses).
async function waitFor(page, fn, arg, ms = 120000) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await page.evaluate(fn, arg)) return;
    await new Promise(r => setTimeout(r, 20));
  }
  throw new Error("timed out waiting for " + fn);
}
const measure = (name, value, unit) => console.log(`measure: ${name} = ${value} ${unit}`);

async function gauge(name) {
  const text = await (await fetch(base + "/metrics")).text();
  const line = text.split("\n").find(l => l.startsWith(name + " "));
  return Number(line.split(" ")[1]);
}

const profile = mkdtempSync(join(tmpdir(), "hearth-ui-chromium-"));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1100, height: 720 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const foreign = [];
const consoleErrors = [];
try {
  const page = ctx.pages()[0] ?? await ctx.newPage();
  page.on("request", r => { if (!r.url().startsWith(base + "/") && !r.url().startsWith("data:") && !r.url().startsWith("blob:")) foreign.push(r.url()); });
  page.on("console", m => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) consoleErrors.push(m.text()); });
  page.on("pageerror", e => consoleErrors.push(String(e)));
  page.setDefaultTimeout(120000);
  const ready = () => page.waitForSelector("body[data-models='1']");

  // The page, its headers, its first render.
  const resp = await page.goto(base + "/");
  const h = resp.headers();
  check(h["content-type"].startsWith("text/html"), "GET / is text/html for a browser");
  check(h["content-security-policy"]?.includes("default-src 'self'") && h["content-security-policy"].includes("frame-ancestors 'none'"), "the page carries a strict CSP");
  check(h["x-content-type-options"] === "nosniff", "nosniff");
  check(h["content-encoding"] === "gzip", "the page is sent gzip-compressed");
  await ready();
  const fcp = await page.evaluate(() => {
    const p = performance.getEntriesByName("first-contentful-paint")[0];
    return p ? p.startTime : performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd;
  });
  measure("first render (first contentful paint)", fcp.toFixed(1), "ms");
  check(fcp <= 300, `first render ${fcp.toFixed(1)} ms <= 300 ms`);

  // Settings: greedy and short replies, so the run is quick and steady.
  const settings = async (o) => {
    if (await page.isHidden("#settings")) await page.click("#settings-toggle");
    for (const [k, v] of Object.entries(o)) { await page.fill("#" + k, String(v)); await page.dispatchEvent("#" + k, "change"); }
    await page.click("#settings-toggle");
  };
  await page.selectOption("#model", model1);
  await settings({ temperature: 0, num_predict: 48 });

  // 1. A reply streams in: several DOM updates of the reply before it is done.
  await page.fill("#prompt", "Write a short list of three fruits.");
  const sent = Date.now();
  await page.press("#prompt", "Enter");
  await page.waitForSelector("article.msg.assistant .body");
  const updates = await page.evaluate(() => new Promise(resolve => {
    let n = 0;
    const log = document.getElementById("log");
    const obs = new MutationObserver(() => {
      const bodies = log.querySelectorAll("article.assistant .body");
      if (bodies.length && bodies[bodies.length - 1].textContent.length) n++;
      if (document.getElementById("stop").hidden) { obs.disconnect(); resolve(n); }
    });
    obs.observe(log, { childList: true, subtree: true, characterData: true });
  }));
  measure("reply DOM updates while streaming", updates, "updates");
  measure("first reply wall time", Date.now() - sent, "ms");
  check(updates >= 3, `the reply streamed in ${updates} DOM updates (>= 3)`);
  const stats = await page.textContent("article.assistant:last-of-type .stats");
  check(/tokens\/s/.test(stats) && /first token \d+ ms/.test(stats) && /context \d+/.test(stats), "the reply shows tokens/s, time to first token and context used: " + stats);
  const firstReply = (await page.textContent("article.assistant:last-of-type .body")).trim();
  check(firstReply.length > 0, "the reply has text");

  // 2. Stop frees the server's sequence.
  await settings({ num_predict: 2000 });
  await page.fill("#prompt", "Tell a very long story about a lighthouse keeper.");
  await page.press("#prompt", "Enter");
  await waitFor(page, () => {
    const b = document.querySelectorAll("article.assistant .body");
    return b.length >= 2 && b[b.length - 1].textContent.length > 20;
  });
  check(await gauge("hearth_active_sequences") >= 1, "a sequence is active while the reply streams");
  const t0 = Date.now();
  await page.keyboard.press("Escape");
  let freed = null;
  while (Date.now() - t0 < 2000) {
    if (await gauge("hearth_active_sequences") === 0) { freed = Date.now() - t0; break; }
    await new Promise(r => setTimeout(r, 10));
  }
  measure("Stop to sequence freed (/metrics)", freed, "ms");
  check(freed !== null && freed <= 200, `Esc freed the sequence in ${freed} ms (<= 200 ms)`);
  await page.waitForSelector("#stop", { state: "hidden" });
  check((await page.textContent("article.assistant:last-of-type .err")) === "stopped", "the stopped reply says so");

  // 3. History survives a reload.
  await page.reload();
  await ready();
  const bodies = await page.$$eval("article.msg .body", ns => ns.map(n => n.textContent));
  check(bodies.includes("Write a short list of three fruits.") && bodies.some(b => b.trim() === firstReply), "the conversation survives a reload");
  check((await page.$$("#conversations li")).length === 1, "the sidebar lists the conversation");

  // 4. Regenerate and edit-and-resend keep the conversation's shape.
  await settings({ num_predict: 16 });
  await page.click("article.assistant:last-of-type button:text('Regenerate')");
  await page.waitForSelector("#stop", { state: "hidden" });
  await waitFor(page, () => !document.querySelector("article.assistant:last-of-type .err"));
  check((await page.$$("article.msg")).length === 4, "regenerate replaced the last reply");
  await page.click("article.user:first-of-type button:text('Edit')");
  await page.fill("article.user textarea", "Name one colour.");
  await page.click("article.user button:text('Send')");
  await page.waitForSelector("#stop", { state: "hidden" });
  const n = await page.$$eval("article.msg", ns => ns.map(x => x.className));
  check(n.length === 2 && (await page.textContent("article.user .body")) === "Name one colour.", "edit-and-resend cut the conversation at the edited message");

  // 5. Model switching: a new chat on the second model.
  await page.click("#new-chat");
  await page.selectOption("#model", model2);
  // Before the load: the memory plan's verdict (/api/plan) for the new model.
  await waitFor(page, () => /^fits \(/.test(document.querySelector("#plan")?.textContent || ""));
  check(true, "the memory plan's verdict before the load: " + await page.textContent("#plan"));
  await settings({ temperature: 0, num_predict: 16 });
  await page.fill("#prompt", "Say hello.");
  await page.press("#prompt", "Enter");
  await page.waitForSelector("article.assistant");
  await page.waitForSelector("#stop", { state: "hidden" });
  check((await page.textContent("article.assistant .who")) === model2, "the reply came from " + model2);
  const ps = await (await fetch(base + "/api/ps")).json();
  check(ps.models.some(m => m.name === model2 || m.name + ":latest" === model2), model2 + " is loaded (/api/ps)");
  await waitFor(page, m => [...document.querySelectorAll("#model option")].some(o => o.value === m && o.textContent.includes("loaded")), model2);
  check(true, "the picker marks the loaded model with its memory");

  // 6. Model output renders inert: an imported conversation and md.js itself.
  const evil = "Here: <img src=x onerror=\"window.__pwned=1\"> and <script>window.__pwned=2</script>\n"
    + "[click me](javascript:window.__pwned=3) [ok](https://example.org/) <a href=\"javascript:window.__pwned=4\">raw</a>\n"
    + "```html\n<img src=x onerror=window.__pwned=5>\n```";
  const file = { name: "evil.json", mimeType: "application/json", buffer: Buffer.from(JSON.stringify({
    title: "evil", model: model1, messages: [{ role: "user", content: "show me" }, { role: "assistant", content: evil }],
  })) };
  await page.setInputFiles("#import", file);
  await waitFor(page, () => document.querySelector("#log")?.textContent.includes("click me"));
  const dom = await page.evaluate(() => ({
    imgs: document.querySelectorAll("#log img, #log script, #log iframe").length,
    js: [...document.querySelectorAll("#log a")].filter(a => !/^(https?|mailto):/.test(a.protocol)).length,
    links: [...document.querySelectorAll("#log a")].map(a => a.href),
  }));
  await page.click("#log >> text=click me");
  await page.click("#log >> text=raw").catch(() => {});
  await new Promise(r => setTimeout(r, 200));
  const pwned = await page.evaluate(() => window.__pwned);
  check(dom.imgs === 0 && dom.js === 0 && pwned === undefined, `model HTML renders inert (elements ${dom.imgs}, js links ${dom.js}, links ${dom.links.join(" ")})`);
  const direct = await page.evaluate(async src => {
    const md = await import("/ui/md.js");
    const div = document.createElement("div");
    div.append(md.render(src));
    return { tags: [...div.querySelectorAll("*")].map(e => e.tagName.toLowerCase()), hrefs: [...div.querySelectorAll("a")].map(a => a.getAttribute("href")), text: div.textContent };
  }, evil);
  check(!direct.tags.some(t => ["img", "script", "iframe"].includes(t)) && direct.hrefs.every(h => /^https:\/\/example\.org/.test(h)) && direct.text.includes("<script>"),
    "md.js renders the payload as text: tags " + [...new Set(direct.tags)].join(","));
  check(direct.tags.includes("pre") && (await page.$$("#log pre button")).length > 0, "code blocks get a copy button");

  // 7. Accessibility: axe-core, light and dark, wide and narrow.
  async function axe(label) {
    await page.evaluate(axeSource);
    const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
    const bad = r.violations.filter(v => v.impact === "serious" || v.impact === "critical");
    for (const v of bad) console.log(`axe ${label}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.map(n => n.target).join(" ")})`);
    measure(`axe violations ${label} (all / serious+critical)`, `${r.violations.length} / ${bad.length}`, "");
    check(bad.length === 0, `axe-core: no serious or critical violations (${label})`);
  }
  await axe("light");
  if (shots) await page.screenshot({ path: join(shots, "ui-light.png") });
  await page.emulateMedia({ colorScheme: "dark" });
  await axe("dark");
  if (shots) await page.screenshot({ path: join(shots, "ui-dark.png") });
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize({ width: 390, height: 760 });
  await axe("narrow");
  if (shots) await page.screenshot({ path: join(shots, "ui-narrow.png") });

  // 8. Nothing but the server was asked for anything.
  check(foreign.length === 0, "zero requests to other hosts" + (foreign.length ? ": " + foreign.join(" ") : ""));
  check(consoleErrors.length === 0, "no script errors" + (consoleErrors.length ? ": " + consoleErrors.join(" | ") : ""));
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
if (failed.length) {
  console.log(`e2e: ${failed.length} check(s) failed`);
  process.exit(1);
}
console.log("e2e: all checks passed");
