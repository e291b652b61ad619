// Conversations kept in the browser's IndexedDB (database "hearth", store
// "conversations", one record per conversation).

const DB = "hearth", STORE = "conversations";
let dbp = null;

function db() {
  dbp ??= new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE, { keyPath: "id" });
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  return dbp;
}

async function tx(mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const t = d.transaction(STORE, mode);
    const req = fn(t.objectStore(STORE));
    t.oncomplete = () => resolve(req?.result);
    t.onerror = () => reject(t.error);
  });
}

export const all = async () =>
  ((await tx("readonly", s => s.getAll())) ?? []).sort((a, b) => b.updated - a.updated);
export const put = conv => tx("readwrite", s => s.put(conv));
export const remove = id => tx("readwrite", s => s.delete(id));

export function fresh(model) {
  return {
    id: crypto.randomUUID(), title: "New chat", model: model || "", system: "",
    options: {}, kb: "", messages: [], updated: Date.now(),
  };
}

// An imported file: one conversation or a list of them; fields are checked
// and copied, never trusted wholesale.
export function parseImport(text) {
  const data = JSON.parse(text);
  const list = Array.isArray(data) ? data : Array.isArray(data.conversations) ? data.conversations : [data];
  return list.map(c => {
    if (!c || !Array.isArray(c.messages)) throw new Error("not a conversation: no messages list");
    const conv = fresh(typeof c.model === "string" ? c.model : "");
    conv.title = typeof c.title === "string" ? c.title.slice(0, 200) : "Imported chat";
    conv.system = typeof c.system === "string" ? c.system : "";
    conv.options = c.options && typeof c.options === "object" ? numbersOnly(c.options) : {};
    conv.messages = c.messages.map(m => {
      if (!m || !["user", "assistant", "system"].includes(m.role) || typeof m.content !== "string")
        throw new Error("a message needs a role (user, assistant) and text content");
      const out = { role: m.role, content: m.content };
      if (typeof m.thinking === "string") out.thinking = m.thinking;
      return out;
    });
    return conv;
  });
}

function numbersOnly(o) {
  const out = {};
  for (const k of ["temperature", "top_p", "top_k", "num_ctx", "seed", "num_predict"])
    if (typeof o[k] === "number" && Number.isFinite(o[k])) out[k] = o[k];
  return out;
}
