//! PDF through `lopdf` (pure Rust, so no system tool is needed at run
//! time or in CI): the text of each page, with clean-up that decides
//! retrieval quality — running headers and footers (lines that repeat at
//! the top or bottom of most pages, page numbers aside) and table-of-
//! contents dot leaders are dropped, words hyphenated across line ends
//! are joined, and lines are regrouped into paragraphs.
//!
//! Encrypted files are skipped (their text cannot be read without the
//! password). Every compressed stream is inflated once under the limit
//! before parsing, so a deflate bomb is refused before `lopdf` would
//! inflate it in full.

use std::collections::HashMap;
use std::io::Read;

use super::{join_lines, skip, Block, Kind, Limits, Skip};

pub fn blocks(bytes: &[u8], limits: &Limits) -> Result<Vec<Block>, Skip> {
    if !bytes.starts_with(b"%PDF-") {
        return skip("not a PDF file (no %PDF- header)");
    }
    if find(bytes, b"/Encrypt").is_some() {
        return skip("an encrypted PDF");
    }
    check_streams(bytes, limits.max_inflated_bytes)?;
    let doc = match lopdf::Document::load_mem(bytes) {
        Ok(d) => d,
        Err(e) => return skip(format!("a corrupt or truncated PDF: {e}")),
    };
    if doc.is_encrypted() {
        return skip("an encrypted PDF");
    }
    let mut pages = Vec::new();
    for (&n, _) in doc.get_pages().iter() {
        let text = doc.extract_text(&[n]).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .collect();
        pages.push((n, lines));
    }
    if pages.is_empty() {
        return skip("a PDF without pages");
    }
    Ok(clean(pages))
}

/// Running lines, dot leaders and page numbers out; paragraphs in.
pub(crate) fn clean(pages: Vec<(u32, Vec<String>)>) -> Vec<Block> {
    let running = running_lines(&pages);
    let mut out = Vec::new();
    for (n, lines) in pages {
        let last = lines.len().saturating_sub(1);
        let kept: Vec<&String> = lines
            .iter()
            .enumerate()
            .filter(|&(i, l)| {
                let edge = i < 2 || i + 2 > last;
                !(is_page_number(l) || is_toc_line(l) || edge && running.contains_key(&shape(l)))
            })
            .map(|(_, l)| l)
            .collect();
        for para in paragraphs(&kept) {
            out.push(Block {
                kind: Kind::Text,
                text: para,
                page: Some(n),
            });
        }
    }
    out
}

/// A line with its digits blanked (page numbers differ between pages).
fn shape(line: &str) -> String {
    line.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect::<String>()
        .to_lowercase()
}

/// Lines among the first or last two of a page that recur on at least
/// 60% of the pages (and on two or more).
fn running_lines(pages: &[(u32, Vec<String>)]) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (_, lines) in pages {
        let n = lines.len();
        let mut edge: Vec<String> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < 2 || i + 2 >= n)
            .map(|(_, l)| shape(l))
            .collect();
        edge.sort();
        edge.dedup();
        for s in edge {
            *seen.entry(s).or_default() += 1;
        }
    }
    let need = (pages.len() * 3).div_ceil(5).max(2);
    seen.retain(|_, c| *c >= need);
    seen
}

/// `12`, `- 12 -`, `Page 3`, `Page 3 of 10`.
fn is_page_number(line: &str) -> bool {
    let l = line.to_lowercase();
    let l = l.trim_matches(|c: char| c == '-' || c == '—' || c.is_whitespace());
    let l = l.strip_prefix("page").unwrap_or(l).trim();
    let mut parts = l.split(" of ");
    let all_digits = |s: &str| !s.is_empty() && s.trim().chars().all(|c| c.is_ascii_digit());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), None, _) => all_digits(a),
        (Some(a), Some(b), None) => all_digits(a) && all_digits(b),
        _ => false,
    }
}

/// A table-of-contents entry: a run of dot leaders (`....` or `. . .`)
/// followed by a page number.
fn is_toc_line(line: &str) -> bool {
    let t = line.trim_end();
    let body = t.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_whitespace());
    if body.len() == t.len() {
        return false;
    }
    let dots = body
        .chars()
        .rev()
        .take_while(|&c| c == '.' || c == ' ' || c == '·');
    dots.filter(|&c| c != ' ').count() >= 4
}

/// Lines regrouped into paragraphs: a paragraph ends at a line that ends
/// a sentence and is clearly shorter than the page's full lines.
fn paragraphs(lines: &[&String]) -> Vec<String> {
    let full = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut out = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    for l in lines {
        cur.push(l);
        let ends = l.ends_with(['.', '!', '?', ':']);
        if ends && l.chars().count() * 10 < full * 8 {
            out.push(join_lines(&cur.join("\n")));
            cur.clear();
        }
    }
    if !cur.is_empty() {
        out.push(join_lines(&cur.join("\n")));
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Inflates every `stream … endstream` that zlib can read, stopping at
/// `cap` bytes in all: a file whose streams inflate beyond it is skipped.
fn check_streams(bytes: &[u8], cap: u64) -> Result<(), Skip> {
    let mut total = 0u64;
    let mut at = 0;
    while let Some(s) = find(&bytes[at..], b"stream").map(|o| at + o) {
        let mut body = s + 6;
        if bytes[s.saturating_sub(3)..s].ends_with(b"end") {
            at = body;
            continue;
        }
        body += bytes[body..]
            .iter()
            .take(2)
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        let end = find(&bytes[body..], b"endstream").map_or(bytes.len(), |o| body + o);
        let mut z = flate2::read::ZlibDecoder::new(&bytes[body..end]).take(cap - total + 1);
        let mut sink = std::io::sink();
        total += std::io::copy(&mut z, &mut sink).unwrap_or(0);
        if total > cap {
            return skip(format!(
                "its compressed streams inflate beyond the {cap}-byte limit"
            ));
        }
        at = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn running_headers_page_numbers_and_leaders_go() {
        let words = ["alpha", "beta", "gamma", "delta"];
        let pages = (1..=4u32)
            .map(|n| {
                let w = words[n as usize - 1];
                let body = format!("Body text about {w} goes on for a while and is long.");
                let num = n.to_string();
                (
                    n,
                    page(&["ACME Manual v2", &body, "Chapter 2 ........ 14", &num]),
                )
            })
            .collect();
        let b = clean(pages);
        assert_eq!(b.len(), 4);
        assert_eq!(
            b[2].text,
            "Body text about gamma goes on for a while and is long."
        );
        assert_eq!(b[2].page, Some(3));
    }

    #[test]
    fn lines_regroup_into_paragraphs_with_hyphens_joined() {
        let l = page(&[
            "The first paragraph wraps over two lines of the page and",
            "ends here, with a retrie-",
            "val word.",
            "Second one.",
        ]);
        let refs: Vec<&String> = l.iter().collect();
        let p = paragraphs(&refs);
        assert_eq!(
            p,
            [
                "The first paragraph wraps over two lines of the page and ends here, with a retrieval word.",
                "Second one."
            ]
        );
    }

    #[test]
    fn toc_and_page_number_shapes() {
        assert!(is_toc_line("Installation . . . . . . 7"));
        assert!(is_toc_line("Usage.......12"));
        assert!(!is_toc_line("Version 1.2"));
        assert!(is_page_number("Page 3 of 10"));
        assert!(is_page_number("- 4 -"));
        assert!(!is_page_number("4 cats"));
    }
}
