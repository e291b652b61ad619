//! HTML: headings, paragraphs, list items and `<pre>` blocks; site
//! furniture (`nav`, `header`, `footer`, `aside`) and non-text elements
//! (`script`, `style`, `head`, ...) are dropped.
//!
//! A single pass over the tags with counters, no tree: deeply nested input
//! costs no stack and no more than linear time.

use super::{join_lines, Block, Kind, Skip};

/// Elements whose content is never text of the document.
const HIDDEN: &[&str] = &[
    "script", "style", "head", "nav", "header", "footer", "aside", "noscript", "template", "svg",
    "form", "button", "select", "iframe", "object",
];
/// Elements whose content is raw text up to their end tag.
const RAW: &[&str] = &["script", "style", "textarea", "xmp"];
/// Elements that end a paragraph.
const BREAKS: &[&str] = &[
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "tr",
    "td",
    "th",
    "table",
    "br",
    "hr",
    "section",
    "article",
    "main",
    "blockquote",
    "body",
    "figure",
    "figcaption",
    "caption",
];

pub fn blocks(html: &str) -> Result<Vec<Block>, Skip> {
    let mut b = Builder::default();
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    while i < html.len() {
        let Some(lt) = html[i..].find('<').map(|o| i + o) else {
            b.text(&html[i..]);
            break;
        };
        b.text(&html[i..lt]);
        if lower[lt..].starts_with("<!--") {
            i = lower[lt..].find("-->").map_or(html.len(), |o| lt + o + 3);
            continue;
        }
        let Some(gt) = html[lt..].find('>').map(|o| lt + o) else {
            break;
        };
        let tag = &lower[lt + 1..gt];
        i = gt + 1;
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if name.is_empty() {
            continue;
        }
        let self_closing = tag.ends_with('/');
        if !closing && RAW.contains(&name.as_str()) {
            // Skip to the matching end tag without reading markup inside.
            let end = format!("</{name}");
            let stop = lower[i..].find(&end).map_or(html.len(), |o| i + o);
            if !HIDDEN.contains(&name.as_str()) {
                b.text(&html[i..stop]);
            }
            i = lower[stop..].find('>').map_or(html.len(), |o| stop + o + 1);
            continue;
        }
        b.tag(&name, closing, self_closing);
    }
    b.flush();
    Ok(b.out)
}

#[derive(Default)]
struct Builder {
    out: Vec<Block>,
    cur: String,
    hidden: usize,
    pre: usize,
    heading: Option<u8>,
}

impl Builder {
    fn text(&mut self, raw: &str) {
        if self.hidden == 0 && !raw.is_empty() {
            self.cur.push_str(&unescape(raw));
        }
    }

    fn tag(&mut self, name: &str, closing: bool, self_closing: bool) {
        if HIDDEN.contains(&name) {
            if !self_closing {
                if closing {
                    self.hidden = self.hidden.saturating_sub(1);
                } else {
                    self.hidden += 1;
                }
            }
            return;
        }
        if self.hidden > 0 {
            return;
        }
        let level = match name.as_bytes() {
            [b'h', d @ b'1'..=b'6'] => Some(d - b'0'),
            _ => None,
        };
        if let Some(level) = level {
            self.flush();
            self.heading = (!closing).then_some(level);
        } else if name == "pre" {
            self.flush();
            self.pre = if closing {
                self.pre.saturating_sub(1)
            } else {
                self.pre + 1
            };
        } else if name == "br" && self.pre > 0 {
            self.cur.push('\n');
        } else if BREAKS.contains(&name) && self.pre == 0 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let text = std::mem::take(&mut self.cur);
        let (kind, text) = match (self.heading, self.pre > 0) {
            (Some(level), _) => (Kind::Heading(level), join_lines(&text)),
            (None, true) => (Kind::Code, text.trim_matches('\n').trim_end().to_string()),
            (None, false) => (Kind::Text, join_lines(&text)),
        };
        let text = if kind == Kind::Code {
            text
        } else {
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        if !text.trim().is_empty() {
            self.out.push(Block::new(kind, text));
        }
    }
}

/// Replaces character references (`&amp;`, `&#233;`, `&#xE9;`, a few named ones).
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[..rest.len().min(12)].find(';');
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                "mdash" => Some('—'),
                "ndash" => Some('–'),
                "hellip" => Some('…'),
                "copy" => Some('©'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .map(|h| u32::from_str_radix(h, 16))
                    .or_else(|| name.strip_prefix('#').map(str::parse::<u32>))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn navigation_and_scripts_are_dropped() {
        let html = "<html><head><title>t</title><style>p{}</style></head><body>\
            <nav><a href=x>Home</a> | <a>About</a></nav><header>Site name</header>\
            <h1>Guide &amp; notes</h1><p>First\nparagraph &#233;t&eacute;.</p>\
            <script>var x = '<p>no</p>';</script><pre>a  b\n  c</pre>\
            <ul><li>one</li><li>two</li></ul><footer>(c) 2024</footer></body></html>";
        let b = blocks(html).unwrap();
        let texts: Vec<&str> = b.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Guide & notes",
                "First paragraph ét&eacute;.",
                "a  b\n  c",
                "one",
                "two"
            ]
        );
        assert_eq!(b[0].kind, Kind::Heading(1));
        assert_eq!(b[2].kind, Kind::Code);
    }

    #[test]
    fn deep_nesting_is_linear_and_stackless() {
        let n = 200_000;
        let html = format!(
            "{}deep text{}",
            "<div><span>".repeat(n),
            "</span></div>".repeat(n)
        );
        let b = blocks(&html).unwrap();
        assert_eq!(b, vec![Block::new(Kind::Text, "deep text")]);
    }
}
