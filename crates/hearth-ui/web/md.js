// Markdown to DOM nodes. Nothing the model writes becomes HTML: every piece
// of text goes through createTextNode, and links keep only http(s) and
// mailto targets (anything else renders as plain text).

const KEYWORDS = new Set(("as async await break case catch class const continue def del elif else enum export "
  + "extends false fn for from func function go if impl import in interface let loop match mod mut new nil "
  + "None null package pub return self static struct switch this throw true True False try type typeof use "
  + "var void while with yield").split(" "));

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export function safeHref(url) {
  try {
    const u = new URL(url, "http://invalid.invalid/");
    if (!/^(https?|mailto):$/.test(u.protocol) || !/^(https?:\/\/|mailto:)/i.test(url.trim())) return null;
    return u.href;
  } catch { return null; }
}

// Inline spans: `code`, **bold**, *italic* / _italic_, [text](url), bare URLs.
const INLINE = /(`+)([^`]+?)\1|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*|\b_([^_]+)_\b|\[([^\]]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g;

export function inline(text, parent) {
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
    last = m.index + m[0].length;
    if (m[2] !== undefined) parent.append(el("code", "", m[2]));
    else if (m[3] !== undefined) inline(m[3], parent.appendChild(el("strong")));
    else if (m[4] !== undefined) inline(m[4], parent.appendChild(el("em")));
    else if (m[5] !== undefined) inline(m[5], parent.appendChild(el("em")));
    else if (m[6] !== undefined) link(m[6], m[7], parent);
    else link(m[8], m[8], parent);
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

function link(label, url, parent) {
  const href = safeHref(url);
  if (!href) { parent.append(document.createTextNode(label)); return; }
  const a = el("a", "", label);
  a.href = href;
  a.rel = "noopener noreferrer nofollow";
  a.target = "_blank";
  parent.append(a);
}

export function highlight(code, parent) {
  const re = /(\/\/[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\/)|("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|\b(\d[\d_.xXa-fA-F]*)\b|\b([A-Za-z_]\w*)\b/g;
  let last = 0;
  for (const m of code.matchAll(re)) {
    let cls = m[1] ? "tk-com" : m[2] ? "tk-str" : m[3] ? "tk-num" : KEYWORDS.has(m[4]) ? "tk-kw" : null;
    if (!cls) continue;
    if (m.index > last) parent.append(document.createTextNode(code.slice(last, m.index)));
    parent.append(el("span", cls, m[0]));
    last = m.index + m[0].length;
  }
  if (last < code.length) parent.append(document.createTextNode(code.slice(last)));
}

function codeBlock(lang, code) {
  const pre = el("pre");
  const c = el("code", lang ? "lang-" + lang.replace(/[^\w-]/g, "") : "");
  highlight(code, c);
  const copy = el("button", "", "Copy");
  copy.type = "button";
  copy.setAttribute("aria-label", "Copy code");
  copy.addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(code); copy.textContent = "Copied"; }
    catch { copy.textContent = "Copy failed"; }
    setTimeout(() => { copy.textContent = "Copy"; }, 1500);
  });
  pre.append(copy, c);
  return pre;
}

// Block structure: fenced code, headings, lists, quotes, rules, paragraphs.
// An unclosed fence (a reply still streaming) renders as code so far.
export function render(src) {
  const frag = document.createDocumentFragment();
  const lines = src.replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  let para = [];
  const flush = () => {
    if (para.length) { const p = el("p"); inline(para.join("\n"), p); frag.append(p); para = []; }
  };
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if ((m = line.match(/^\s*(```+|~~~+)\s*([\w+#.-]*)/))) {
      flush();
      const fence = m[1];
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
      i++;
      frag.append(codeBlock(m[2], body.join("\n")));
      continue;
    }
    if ((m = line.match(/^(#{1,6})\s+(.*)$/))) {
      flush();
      const h = el("h" + Math.min(6, m[1].length + 2));
      inline(m[2], h);
      frag.append(h);
    } else if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      flush();
      frag.append(el("hr"));
    } else if (/^\s*([-*+]|\d+[.)])\s+/.test(line)) {
      flush();
      const ordered = /^\s*\d/.test(line);
      const list = el(ordered ? "ol" : "ul");
      while (i < lines.length && (m = lines[i].match(/^\s*(?:[-*+]|\d+[.)])\s+(.*)$/))) {
        const li = el("li");
        inline(m[1], li);
        list.append(li);
        i++;
      }
      frag.append(list);
      continue;
    } else if (/^>\s?/.test(line)) {
      flush();
      const q = [];
      while (i < lines.length && /^>\s?/.test(lines[i])) q.push(lines[i++].replace(/^>\s?/, ""));
      const bq = el("blockquote");
      bq.append(render(q.join("\n")));
      frag.append(bq);
      continue;
    } else if (!line.trim()) {
      flush();
    } else {
      para.push(line);
    }
    i++;
  }
  flush();
  return frag;
}
