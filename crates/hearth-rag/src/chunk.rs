//! Structure-aware chunking: a document's blocks become chunks of about
//! `target` tokens that never cross a heading or a page, keep code blocks
//! whole (when they fit `max`), break paragraphs only between sentences,
//! and repeat up to `overlap` tokens of the previous chunk's end.
//!
//! A chunk's text is a slice of the document text (the blocks joined by
//! blank lines), so its span — in characters — points at exactly what it
//! holds.

use crate::extract::{Block, Kind};

/// Chunk sizes, in tokens of the embedding model.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub target: usize,
    pub overlap: usize,
    /// Hard cap: the embedding model's input limit.
    pub max: usize,
}

impl Default for Sizes {
    fn default() -> Sizes {
        Sizes {
            target: 160,
            overlap: 32,
            max: 480,
        }
    }
}

/// One piece of a document to embed and index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub text: String,
    pub page: Option<u32>,
    /// The headings above it, outermost first, joined by ` > `.
    pub heading: String,
    /// Character offsets `[start, end)` in [`document_text`].
    pub span: (usize, usize),
}

/// The document text spans refer to: the blocks' texts joined by blank lines.
pub fn document_text(blocks: &[Block]) -> String {
    blocks
        .iter()
        .map(|b| b.text.as_str())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A sentence, a code block or part of one: the unit chunks are made of.
struct Piece {
    start: usize,
    end: usize,
    tokens: usize,
    page: Option<u32>,
    heading: usize,
}

/// The chunks of `blocks`; `count` gives the tokens of a text.
pub fn chunks(blocks: &[Block], sizes: &Sizes, count: &dyn Fn(&str) -> usize) -> Vec<Chunk> {
    let doc = document_text(blocks);
    let target = sizes.target.clamp(1, sizes.max.max(1));
    let mut headings: Vec<(u8, String)> = Vec::new();
    let mut paths: Vec<String> = vec![String::new()];
    let mut pieces = Vec::new();
    let mut at = 0;
    for b in blocks {
        let start = at;
        at += b.text.len() + 2;
        if let Kind::Heading(level) = b.kind {
            headings.retain(|(l, _)| *l < level);
            headings.push((level, b.text.clone()));
            let path: Vec<&str> = headings.iter().map(|(_, t)| t.as_str()).collect();
            paths.push(path.join(" > "));
            continue;
        }
        let whole = b.kind == Kind::Code && count(&b.text) <= sizes.max;
        let parts = if whole {
            vec![(0, b.text.len())]
        } else {
            split(&b.text, b.kind)
        };
        for (s, e) in parts {
            for (s, e) in cap(&b.text, s, e, target, count) {
                pieces.push(Piece {
                    start: start + s,
                    end: start + e,
                    tokens: count(&b.text[s..e]).max(1),
                    page: b.page,
                    heading: paths.len() - 1,
                });
            }
        }
    }
    let mut out = Vec::new();
    let mut first = 0;
    while first < pieces.len() {
        let (p0, mut tokens, mut last) = (&pieces[first], pieces[first].tokens, first);
        while last + 1 < pieces.len() {
            let next = &pieces[last + 1];
            if next.page != p0.page || next.heading != p0.heading || tokens + next.tokens > target {
                break;
            }
            tokens += next.tokens;
            last += 1;
        }
        out.push((first, last));
        // The next chunk starts with the tail of this one, up to `overlap`
        // tokens, when it continues the same section.
        let mut next = last + 1;
        if let Some(n) = pieces.get(next) {
            let mut back = 0;
            while next - 1 > first
                && n.page == p0.page
                && n.heading == p0.heading
                && back + pieces[next - 1].tokens <= sizes.overlap
            {
                back += pieces[next - 1].tokens;
                next -= 1;
            }
        }
        first = next;
    }
    let chars = CharIndex::new(&doc);
    let mut fitted = Vec::with_capacity(out.len());
    for (f, l) in out {
        let (s, e) = (pieces[f].start, pieces[l].end);
        let c = Chunk {
            text: doc[s..e].to_string(),
            page: pieces[f].page,
            heading: paths[pieces[f].heading].clone(),
            span: (chars.of(s), chars.of(e)),
        };
        fit(c, sizes.max.max(1), count, &mut fitted);
    }
    fitted
}

/// Pushes `c` to `out`, halved (at a space near the middle when there is
/// one) as often as needed for every part to count at most `max` tokens:
/// the token estimate of [`cap`] can be short, and the embedder must never
/// be handed more than its context.
fn fit(c: Chunk, max: usize, count: &dyn Fn(&str) -> usize, out: &mut Vec<Chunk>) {
    let n_chars = c.span.1 - c.span.0;
    if n_chars < 2 || count(&c.text) <= max {
        out.push(c);
        return;
    }
    let half = c.text.char_indices().nth(n_chars / 2).map_or(0, |(b, _)| b);
    let from = c.text.floor_char_boundary(half / 2);
    let cut = c.text[from..half]
        .rfind(char::is_whitespace)
        .map_or(half, |p| from + p);
    let cut = if cut == 0 { half } else { cut };
    let left_chars = c.text[..cut].chars().count();
    let (a, b) = c.text.split_at(cut);
    let first = Chunk {
        text: a.to_string(),
        span: (c.span.0, c.span.0 + left_chars),
        ..c.clone()
    };
    let second = Chunk {
        text: b.to_string(),
        span: (c.span.0 + left_chars, c.span.1),
        ..c
    };
    fit(first, max, count, out);
    fit(second, max, count, out);
}

/// Byte ranges of the sentences of a paragraph (or the lines of a table
/// row or an over-long code block).
fn split(text: &str, kind: Kind) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        let boundary = match kind {
            Kind::Code | Kind::Row => c == b'\n',
            _ => {
                matches!(c, b'.' | b'?' | b'!')
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace)
            }
        };
        if boundary {
            let end = if c == b'\n' { i } else { i + 1 };
            if end > start {
                out.push((start, end));
            }
            start = i + 1;
            while start < bytes.len() && bytes[start] == b' ' {
                start += 1;
            }
        }
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

/// `[s, e)` of `text` cut at spaces into parts of at most `target` tokens
/// (estimated from the share of characters), for sentences that are too long.
fn cap(
    text: &str,
    s: usize,
    e: usize,
    target: usize,
    count: &dyn Fn(&str) -> usize,
) -> Vec<(usize, usize)> {
    let n = count(&text[s..e]);
    if n <= target {
        return vec![(s, e)];
    }
    let parts = n.div_ceil(target);
    let step = (e - s).div_ceil(parts).max(1);
    let mut out = Vec::new();
    let mut a = s;
    while a < e {
        let mut b = (a + step).min(e);
        while b < e && !text.is_char_boundary(b) {
            b += 1;
        }
        if b < e {
            if let Some(sp) = text[a..b].rfind(char::is_whitespace).filter(|&p| p > 0) {
                b = a + sp;
            }
        }
        out.push((a, b));
        a = b;
        while a < e && text.as_bytes()[a].is_ascii_whitespace() {
            a += 1;
        }
    }
    out
}

/// Byte offset → character offset, for offsets on character boundaries.
struct CharIndex {
    /// Byte offset of every 64th character.
    marks: Vec<usize>,
    text_len: usize,
    text: String,
}

impl CharIndex {
    fn new(text: &str) -> CharIndex {
        let marks = text.char_indices().step_by(64).map(|(b, _)| b).collect();
        CharIndex {
            marks,
            text_len: text.len(),
            text: text.to_string(),
        }
    }

    fn of(&self, byte: usize) -> usize {
        let byte = byte.min(self.text_len);
        let m = self.marks.partition_point(|&b| b <= byte).saturating_sub(1);
        let base = self.marks.get(m).copied().unwrap_or(0);
        m * 64 + self.text[base..byte].chars().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    #[test]
    fn chunks_follow_headings_keep_code_whole_and_overlap() {
        let blocks = vec![
            Block::new(Kind::Heading(1), "Guide"),
            Block::new(
                Kind::Text,
                "One two three. Four five six. Seven eight nine.",
            ),
            Block::new(Kind::Heading(2), "Build"),
            Block::new(Kind::Code, "make all\nmake install\nmake check"),
            Block::new(Kind::Text, "Then run it é."),
        ];
        let sizes = Sizes {
            target: 6,
            overlap: 3,
            max: 20,
        };
        let c = chunks(&blocks, &sizes, &words);
        let texts: Vec<&str> = c.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "One two three. Four five six.",
                "Four five six. Seven eight nine.",
                "make all\nmake install\nmake check",
                "Then run it é."
            ]
        );
        assert_eq!(c[0].heading, "Guide");
        assert_eq!(c[2].heading, "Guide > Build");
        let doc: Vec<char> = document_text(&blocks).chars().collect();
        for ch in &c {
            let s: String = doc[ch.span.0..ch.span.1].iter().collect();
            assert_eq!(s, ch.text);
        }
    }

    #[test]
    fn pages_split_chunks_and_long_sentences_are_cut() {
        let mut a = Block::new(Kind::Text, "alpha beta");
        a.page = Some(1);
        let mut b = Block::new(
            Kind::Text,
            (0..25)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
        b.page = Some(2);
        let sizes = Sizes {
            target: 10,
            overlap: 0,
            max: 20,
        };
        let c = chunks(&[a, b], &sizes, &words);
        assert_eq!(c[0].text, "alpha beta");
        assert_eq!(c[0].page, Some(1));
        assert!(c.len() >= 4, "{c:?}");
        assert!(
            c[1..]
                .iter()
                .all(|c| c.page == Some(2) && words(&c.text) <= 10),
            "{c:?}"
        );
    }

    #[test]
    fn a_chunk_over_the_limit_is_split_never_cut() {
        // One "sentence" with no sentence end and a long unbroken word:
        // the character-share estimate is short for it.
        let text = format!("{} {}", "a ".repeat(30).trim_end(), "x".repeat(200));
        let b = Block::new(Kind::Text, text.clone());
        let sizes = Sizes {
            target: 40,
            overlap: 0,
            max: 40,
        };
        // A token per word, plus one per 4 letters of a word.
        let count = |s: &str| s.split_whitespace().map(|w| 1 + w.len() / 4).sum::<usize>();
        let c = chunks(&[b], &sizes, &count);
        assert!(c.len() >= 2, "{c:?}");
        assert!(c.iter().all(|c| count(&c.text) <= 40), "{c:?}");
        let letters = |s: &str| s.split_whitespace().collect::<String>();
        let joined: String = c.iter().map(|c| letters(&c.text)).collect();
        assert_eq!(joined, letters(&text));
        let doc: Vec<char> = text.chars().collect();
        for ch in &c {
            let s: String = doc[ch.span.0..ch.span.1].iter().collect();
            assert_eq!(s, ch.text);
        }
    }
}
