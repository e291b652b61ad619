// The chat page: conversations (store.js), Markdown (md.js) and the
// server's Ollama API (/api/chat, /api/tags, /api/ps, /api/pull, /api/plan,
// /api/rag*, /v1/audio/transcriptions when offered).

import { render } from "./md.js";
import * as store from "./store.js";

const $ = id => document.getElementById(id);
const state = { convs: [], cur: null, busy: null, ps: [], features: {}, attachments: [] };

// --- requests -------------------------------------------------------------

async function api(path, init = {}, retried = false) {
  const headers = new Headers(init.headers || {});
  const key = localStorage.getItem("hearth-api-key");
  if (key) headers.set("Authorization", "Bearer " + key);
  if (init.body && !(init.body instanceof FormData)) headers.set("Content-Type", "application/json");
  const r = await fetch(path, { ...init, headers });
  if (r.status === 401 && !retried && await askKey()) return api(path, init, true);
  return r;
}

function askKey() {
  const d = $("key-dialog");
  $("key").value = "";
  d.showModal();
  return new Promise(resolve => d.addEventListener("close", () => {
    const k = $("key").value.trim();
    if (k) localStorage.setItem("hearth-api-key", k);
    resolve(!!k);
  }, { once: true }));
}

async function errorText(r) {
  try { const j = await r.json(); return j.error?.message || j.error || r.statusText; }
  catch { return r.statusText || "HTTP " + r.status; }
}

// Reads an NDJSON body, calling `each` per record.
async function ndjson(r, each) {
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) each(JSON.parse(line));
    }
  }
  if (buf.trim()) each(JSON.parse(buf));
}

// /api/ps may name a model without the ":latest" that /api/tags shows.
const sameModel = (a, b) => a === b || a === b + ":latest" || a + ":latest" === b;
const gb = n => (n / 1e9).toFixed(n >= 1e10 ? 0 : 1) + " GB";

// --- models ---------------------------------------------------------------

async function loadModels() {
  const [tags, ps] = await Promise.all([api("/api/tags"), api("/api/ps")]);
  const models = tags.ok ? (await tags.json()).models ?? [] : [];
  state.ps = ps.ok ? (await ps.json()).models ?? [] : [];
  const sel = $("model");
  const keep = state.cur?.model || sel.value;
  sel.replaceChildren();
  for (const m of models) {
    const o = document.createElement("option");
    const loaded = state.ps.find(p => sameModel(p.name, m.name));
    o.value = m.name;
    o.textContent = m.name + (loaded ? ` (loaded, ${gb(loaded.size)})` : "");
    sel.append(o);
  }
  if (!models.length) sel.append(new Option("no models: pull one in Settings", ""));
  if (keep && models.some(m => m.name === keep)) sel.value = keep;
  const loaded = $("loaded");
  loaded.textContent = state.ps.length
    ? "Loaded: " + state.ps.map(p => `${p.name} (${gb(p.size)})`).join(", ")
    : "No model loaded.";
  planVerdict();
}

async function planVerdict() {
  const el = $("plan");
  const model = $("model").value;
  el.textContent = "";
  el.className = "";
  if (!model) return;
  if (state.ps.some(p => sameModel(p.name, model))) { el.textContent = "loaded"; return; }
  const r = await api("/api/plan", { method: "POST", body: JSON.stringify({ model }) });
  if (!r.ok) { el.textContent = await errorText(r); el.className = "bad"; return; }
  const p = await r.json();
  el.textContent = p.fits ? `fits (${gb(p.need_bytes)} of ${gb(p.have_bytes)})` : p.message;
  el.className = p.fits ? "" : "bad";
}

async function pull() {
  const name = $("pull-name").value.trim();
  if (!name) return;
  const bar = $("pull-progress"), status = $("pull-status");
  bar.hidden = false;
  bar.removeAttribute("value");
  status.textContent = "pulling " + name;
  try {
    const r = await api("/api/pull", { method: "POST", body: JSON.stringify({ model: name, stream: true }) });
    if (!r.ok) throw new Error(await errorText(r));
    await ndjson(r, rec => {
      if (rec.error) throw new Error(rec.error);
      if (rec.total) { bar.max = rec.total; bar.value = rec.completed || 0; }
      status.textContent = rec.status + (rec.total ? ` ${Math.floor(100 * (rec.completed || 0) / rec.total)}%` : "");
    });
    await loadModels();
  } catch (e) {
    status.textContent = "pull failed: " + e.message;
  }
  bar.hidden = true;
}

// --- conversations ----------------------------------------------------------

async function refreshList() {
  state.convs = await store.all();
  const q = $("search").value.trim().toLowerCase();
  const ul = $("conversations");
  ul.replaceChildren();
  for (const c of state.convs) {
    if (q && !c.title.toLowerCase().includes(q) && !c.messages.some(m => m.content.toLowerCase().includes(q))) continue;
    const li = document.createElement("li");
    if (c.id === state.cur?.id) li.setAttribute("aria-current", "true");
    const open = button(c.title, () => openConv(c.id));
    const ren = button("✎", () => rename(c), "Rename " + c.title);
    const del = button("×", () => removeConv(c), "Delete " + c.title);
    ren.className = del.className = "icon";
    li.append(open, ren, del);
    ul.append(li);
  }
}

function button(text, onclick, label) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (label) b.setAttribute("aria-label", label);
  b.addEventListener("click", onclick);
  return b;
}

async function rename(c) {
  const t = prompt("Rename conversation", c.title);
  if (t === null || !t.trim()) return;
  c.title = t.trim().slice(0, 200);
  await store.put(c);
  refreshList();
}

async function removeConv(c) {
  if (!confirm(`Delete "${c.title}"?`)) return;
  await store.remove(c.id);
  if (state.cur?.id === c.id) state.cur = null;
  await refreshList();
  openConv(state.convs[0]?.id);
}

async function openConv(id) {
  state.cur = state.convs.find(c => c.id === id) || store.fresh($("model").value);
  localStorage.setItem("hearth-current", state.cur.id);
  if (state.cur.model && [...$("model").options].some(o => o.value === state.cur.model)) $("model").value = state.cur.model;
  $("system").value = state.cur.system;
  for (const k of ["temperature", "top_p", "top_k", "num_ctx", "seed", "num_predict"])
    $(k).value = state.cur.options[k] ?? "";
  $("kb").value = state.cur.kb || "";
  $("sidebar").classList.remove("open");
  drawLog();
  refreshList();
  planVerdict();
}

async function save() {
  const c = state.cur;
  c.updated = Date.now();
  await store.put(c);
  if (!state.convs.some(x => x.id === c.id)) state.convs.unshift(c);
  refreshList();
}

function readSettings() {
  const c = state.cur;
  c.system = $("system").value;
  c.model = $("model").value;
  c.kb = $("kb").value;
  c.options = {};
  for (const k of ["temperature", "top_p", "top_k", "num_ctx", "seed", "num_predict"]) {
    const v = $(k).value;
    if (v !== "" && Number.isFinite(Number(v))) c.options[k] = Number(v);
  }
}

function exportAll() {
  const blob = new Blob([JSON.stringify({ conversations: state.convs }, null, 2)], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "hearth-conversations.json";
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function importFile(file) {
  try {
    const convs = store.parseImport(await file.text());
    for (const c of convs) await store.put(c);
    await refreshList();
    openConv(convs[0]?.id);
  } catch (e) {
    alert("Import failed: " + e.message);
  }
}

// --- the log ---------------------------------------------------------------

function drawLog() {
  const log = $("log");
  log.replaceChildren();
  state.cur.messages.forEach((m, i) => log.append(messageNode(m, i)));
  log.scrollTop = log.scrollHeight;
}

function messageNode(m, i) {
  const div = document.createElement("article");
  div.className = "msg " + m.role;
  const who = document.createElement("div");
  who.className = "who";
  who.textContent = m.role === "user" ? "You" : m.model || "Assistant";
  div.append(who);
  if (m.thinking) {
    const d = document.createElement("details");
    const s = document.createElement("summary");
    s.textContent = "Thinking";
    d.append(s, document.createTextNode(m.thinking));
    div.append(d);
  }
  const body = document.createElement("div");
  body.className = "body";
  if (m.role === "user") body.textContent = m.content;
  else body.append(render(m.content));
  div.append(body);
  if (m.hits?.length) {
    const cites = document.createElement("div");
    cites.className = "cite";
    m.hits.forEach((h, n) => {
      const d = document.createElement("details");
      const s = document.createElement("summary");
      s.textContent = `[${n + 1}] ${h.source}${h.page ? " p." + h.page : ""}`;
      d.append(s, document.createTextNode(h.text));
      cites.append(d);
    });
    div.append(cites);
  }
  if (m.error) {
    const e = document.createElement("div");
    e.className = "err";
    e.textContent = m.error;
    div.append(e);
  }
  if (m.stats) {
    const s = document.createElement("div");
    s.className = "stats";
    s.textContent = m.stats;
    div.append(s);
  }
  const acts = document.createElement("div");
  acts.className = "actions";
  if (m.role === "user") acts.append(button("Edit", () => edit(i, div)));
  if (m.role === "assistant" && i === state.cur.messages.length - 1) acts.append(button("Regenerate", regenerate));
  div.append(acts);
  return div;
}

function edit(i, node) {
  if (state.busy) return;
  const ta = document.createElement("textarea");
  ta.value = state.cur.messages[i].content;
  ta.setAttribute("aria-label", "Edit message");
  ta.rows = 4;
  ta.style.width = "100%";
  const go = button("Send", async () => {
    state.cur.messages.splice(i);
    state.cur.messages.push({ role: "user", content: ta.value });
    await reply();
  });
  node.querySelector(".body").replaceWith(ta);
  node.querySelector(".actions").replaceChildren(go, button("Cancel", drawLog));
  ta.focus();
}

async function regenerate() {
  if (state.busy) return;
  const ms = state.cur.messages;
  if (ms.at(-1)?.role === "assistant") ms.pop();
  await reply();
}

// --- sending ----------------------------------------------------------------

async function send() {
  const text = $("prompt").value;
  if (state.busy || (!text.trim() && !state.attachments.length)) return;
  readSettings();
  let content = text;
  for (const a of state.attachments) content += `\n\n${a.name}:\n\`\`\`\n${a.text}\n\`\`\``;
  state.attachments = [];
  $("attachments").replaceChildren();
  $("prompt").value = "";
  const ms = state.cur.messages;
  if (!ms.length) state.cur.title = text.trim().slice(0, 60) || "Chat";
  ms.push({ role: "user", content });
  await reply();
}

async function knowledge(question) {
  const kb = state.cur.kb;
  if (!kb) return null;
  const r = await api("/api/rag/query", { method: "POST", body: JSON.stringify({ kb, query: question, k: 4 }) });
  if (!r.ok) throw new Error("knowledge base: " + await errorText(r));
  return (await r.json()).hits ?? [];
}

async function reply() {
  readSettings();
  const c = state.cur;
  const model = c.model;
  const msg = { role: "assistant", content: "", model };
  c.messages.push(msg);
  await save();
  drawLog();
  const node = $("log").lastElementChild;
  const ctl = new AbortController();
  state.busy = ctl;
  $("stop").hidden = false;
  $("send").disabled = true;
  const t0 = performance.now();
  let ttft = null, pending = false;
  const paint = () => {
    pending = false;
    const body = node.querySelector(".body");
    body.replaceChildren(render(msg.content));
    if (msg.thinking) {
      let d = node.querySelector("details");
      if (!d) { d = document.createElement("details"); d.append(Object.assign(document.createElement("summary"), { textContent: "Thinking" }), ""); node.insertBefore(d, body); }
      d.lastChild.textContent = msg.thinking;
    }
    $("log").scrollTop = $("log").scrollHeight;
  };
  try {
    const history = c.messages.slice(0, -1).map(m => ({ role: m.role, content: m.content }));
    const last = history.at(-1);
    const hits = last ? await knowledge(last.content) : null;
    if (hits?.length) {
      msg.hits = hits;
      last.content = "Use these passages, citing them as [n]:\n"
        + hits.map((h, n) => `[${n + 1}] (${h.source}) ${h.text}`).join("\n\n") + "\n\nQuestion: " + last.content;
    }
    const messages = c.system ? [{ role: "system", content: c.system }, ...history] : history;
    const r = await api("/api/chat", {
      method: "POST", signal: ctl.signal,
      body: JSON.stringify({ model, messages, stream: true, options: c.options }),
    });
    if (!r.ok) throw new Error(await errorText(r));
    await ndjson(r, rec => {
      if (rec.error) throw new Error(rec.error);
      const m = rec.message || {};
      if ((m.content || m.thinking) && ttft === null) ttft = performance.now() - t0;
      msg.content += m.content || "";
      if (m.thinking) msg.thinking = (msg.thinking || "") + m.thinking;
      if (rec.done) msg.stats = stats(rec, ttft, c);
      if (!pending) { pending = true; requestAnimationFrame(paint); }
    });
  } catch (e) {
    msg.error = e.name === "AbortError" ? "stopped" : e.message;
  }
  await save();
  drawLog();
  // The log is redrawn before Stop hides, so "Stop hidden" means "settled".
  state.busy = null;
  $("stop").hidden = true;
  $("send").disabled = false;
  loadModels();
}

function stats(rec, ttft, c) {
  const tps = rec.eval_duration ? rec.eval_count / (rec.eval_duration / 1e9) : 0;
  const used = (rec.prompt_eval_count || 0) + (rec.eval_count || 0);
  const ctx = c.options.num_ctx || state.ps.find(p => sameModel(p.name, c.model))?.context_length;
  return `${tps.toFixed(1)} tokens/s · first token ${Math.round(ttft ?? 0)} ms · context ${used}${ctx ? " / " + ctx : ""} tokens`;
}

function stop() {
  state.busy?.abort();
}

// --- files and voice ----------------------------------------------------------

async function attach(files) {
  for (const f of files) {
    if (f.size > 512 * 1024) { alert(`${f.name} is over 512 KB; attach a smaller text file or add it to a knowledge base.`); continue; }
    const text = await f.text();
    if (text.includes("\u0000")) { alert(`${f.name} is not a text file.`); continue; }
    state.attachments.push({ name: f.name, text });
    const chip = button(`${f.name} ×`, () => {
      state.attachments = state.attachments.filter(a => a.name !== f.name);
      chip.remove();
    }, "Remove attachment " + f.name);
    $("attachments").append(chip);
  }
}

let recorder = null;
async function dictate() {
  const b = $("dictate");
  if (recorder) { recorder.stop(); return; }
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); }
  catch (e) { alert("No microphone: " + e.message); return; }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = e => chunks.push(e.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach(t => t.stop());
    recorder = null;
    b.textContent = "Dictate";
    const form = new FormData();
    form.append("file", new Blob(chunks, { type: chunks[0]?.type || "audio/webm" }), "speech.webm");
    const r = await api("/v1/audio/transcriptions", { method: "POST", body: form });
    if (!r.ok) { alert("Transcription failed: " + await errorText(r)); return; }
    $("prompt").value += (await r.json()).text ?? "";
  };
  recorder.start();
  b.textContent = "Stop dictation";
}

async function probe() {
  const rag = await api("/api/rag");
  if (rag.ok) {
    const kbs = (await rag.json()).knowledge_bases ?? [];
    for (const k of kbs) $("kb").append(new Option(k.name, k.name));
    $("kb-row").hidden = !kbs.length;
  }
  const t = await api("/v1/audio/transcriptions", { method: "GET" });
  $("dictate").hidden = t.status === 404 || !navigator.mediaDevices || !window.MediaRecorder;
}

// --- wiring ------------------------------------------------------------------

function wire() {
  $("composer").addEventListener("submit", e => { e.preventDefault(); send(); });
  $("prompt").addEventListener("keydown", e => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  document.addEventListener("keydown", e => { if (e.key === "Escape") stop(); });
  $("stop").addEventListener("click", stop);
  $("new-chat").addEventListener("click", () => openConv(null));
  $("search").addEventListener("input", refreshList);
  $("export").addEventListener("click", exportAll);
  $("import").addEventListener("change", e => { if (e.target.files[0]) importFile(e.target.files[0]); e.target.value = ""; });
  $("attach").addEventListener("change", e => { attach([...e.target.files]); e.target.value = ""; });
  $("dictate").addEventListener("click", dictate);
  $("pull").addEventListener("click", pull);
  $("model").addEventListener("change", () => { if (state.cur) { state.cur.model = $("model").value; if (state.cur.messages.length) save(); } planVerdict(); });
  $("settings-toggle").addEventListener("click", () => {
    const s = $("settings");
    s.hidden = !s.hidden;
    $("settings-toggle").setAttribute("aria-expanded", String(!s.hidden));
  });
  for (const id of ["system", "temperature", "top_p", "top_k", "num_ctx", "seed", "num_predict", "kb"])
    $(id).addEventListener("change", () => { readSettings(); save(); });
  $("open-sidebar").addEventListener("click", () => $("sidebar").classList.add("open"));
  $("close-sidebar").addEventListener("click", () => $("sidebar").classList.remove("open"));
}

async function main() {
  wire();
  state.convs = await store.all();
  const cur = localStorage.getItem("hearth-current");
  await openConv(state.convs.some(c => c.id === cur) ? cur : state.convs[0]?.id);
  document.body.dataset.ready = "1";
  await Promise.all([loadModels(), probe()]);
  document.body.dataset.models = "1";
  $("prompt").focus();
}

main();
