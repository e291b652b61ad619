//! Plain text, Markdown and CSV.

use super::{join_lines, skip, Block, Kind, Skip};

/// `bytes` as text: UTF-8 (a BOM is dropped), else Latin-1 when it has no
/// control bytes; binary content (NUL bytes, many control bytes) is a skip.
pub fn decode(bytes: &[u8]) -> Result<String, Skip> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let sample = &bytes[..bytes.len().min(1 << 16)];
    let control = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c))
        .count();
    if sample.contains(&0) || control * 100 > sample.len() {
        return skip("binary content, not text");
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(_) => {
            let high = sample.iter().filter(|&&b| b >= 0x80).count();
            if high * 10 > sample.len() * 3 {
                return skip("binary content, not text (invalid UTF-8)");
            }
            Ok(bytes.iter().map(|&b| b as char).collect())
        }
    }
}

/// Paragraphs separated by blank lines; lines unwrapped, hyphenated words
/// joined. Indented paragraphs (four spaces or a tab) are kept as code.
pub fn plain(text: &str) -> Vec<Block> {
    paragraphs(text)
        .into_iter()
        .map(|p| {
            if p.lines()
                .all(|l| l.starts_with("    ") || l.starts_with('\t'))
            {
                Block::new(Kind::Code, p.trim_end())
            } else {
                Block::new(Kind::Text, join_lines(&p))
            }
        })
        .collect()
}

fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r').replace('\x0c', "");
        if line.trim().is_empty() {
            if !cur.trim().is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
        } else {
            cur.push_str(&line);
            cur.push('\n');
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

/// Markdown: `#` headings (and `===`/`---` underlined ones), fenced code
/// blocks kept whole with their line breaks, other paragraphs unwrapped.
pub fn markdown(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut para: Vec<&str> = Vec::new();
    let mut fence: Option<(String, Vec<&str>)> = None;
    let flush = |para: &mut Vec<&str>, out: &mut Vec<Block>| {
        if !para.is_empty() {
            out.push(Block::new(Kind::Text, join_lines(&para.join("\n"))));
            para.clear();
        }
    };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some((marker, body)) = &mut fence {
            if trimmed.starts_with(marker.as_str()) {
                out.push(Block::new(Kind::Code, body.join("\n")));
                fence = None;
            } else {
                body.push(line);
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            flush(&mut para, &mut out);
            fence = Some((trimmed[..3].to_string(), Vec::new()));
            continue;
        }
        let hashes = trimmed.bytes().take_while(|&b| b == b'#').count();
        if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
            flush(&mut para, &mut out);
            let title = trimmed[hashes..].trim().trim_end_matches('#').trim();
            out.push(Block::new(Kind::Heading(hashes as u8), title));
            continue;
        }
        let underline = !trimmed.is_empty()
            && (trimmed.bytes().all(|b| b == b'=') || trimmed.bytes().all(|b| b == b'-'));
        if underline && para.len() == 1 {
            let level = if trimmed.starts_with('=') { 1 } else { 2 };
            out.push(Block::new(Kind::Heading(level), para[0].trim()));
            para.clear();
            continue;
        }
        if trimmed.is_empty() {
            flush(&mut para, &mut out);
        } else {
            para.push(line);
        }
    }
    if let Some((_, body)) = fence {
        out.push(Block::new(Kind::Code, body.join("\n")));
    }
    flush(&mut para, &mut out);
    out
}

/// CSV: each row a block of `column: value` lines under the header row's
/// names. Quoted fields may hold commas, quotes (`""`) and line breaks.
pub fn csv(text: &str) -> Result<Vec<Block>, Skip> {
    let rows = csv_rows(text);
    let Some((header, body)) = rows.split_first() else {
        return skip("an empty CSV file");
    };
    Ok(body
        .iter()
        .filter(|r| r.iter().any(|f| !f.trim().is_empty()))
        .map(|r| {
            let lines: Vec<String> = r
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(i, v)| match header.get(i) {
                    Some(h) if !h.trim().is_empty() => format!("{}: {}", h.trim(), v.trim()),
                    _ => v.trim().to_string(),
                })
                .collect();
            Block::new(Kind::Row, lines.join("\n"))
        })
        .collect())
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_keeps_code_whole_and_finds_headings() {
        let b = markdown(
            "# Title\n\nSome text\nwrapped here.\n\n```sh\nls -l\n\ncd /\n```\n\nSub\n---\nmore",
        );
        assert_eq!(b[0], Block::new(Kind::Heading(1), "Title"));
        assert_eq!(b[1], Block::new(Kind::Text, "Some text wrapped here."));
        assert_eq!(b[2], Block::new(Kind::Code, "ls -l\n\ncd /"));
        assert_eq!(b[3], Block::new(Kind::Heading(2), "Sub"));
        assert_eq!(b[4], Block::new(Kind::Text, "more"));
    }

    #[test]
    fn csv_rows_become_named_fields() {
        let b = csv("name,notes\nada,\"wrote, \"\"first\"\"\nprogram\"\n\n").unwrap();
        assert_eq!(
            b,
            vec![Block::new(
                Kind::Row,
                "name: ada\nnotes: wrote, \"first\"\nprogram"
            )]
        );
    }

    #[test]
    fn binary_junk_is_not_text() {
        let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert!(decode(&junk).is_err());
        assert_eq!(decode("caf\u{e9}".as_bytes()).unwrap(), "café");
        assert_eq!(decode(b"caf\xe9").unwrap(), "café");
    }

    #[test]
    fn plain_text_unwraps_paragraphs_and_keeps_indented_code() {
        let b = plain("First line\nsecond line.\n\n    code here\n    more code\n");
        assert_eq!(b[0], Block::new(Kind::Text, "First line second line."));
        assert_eq!(b[1], Block::new(Kind::Code, "    code here\n    more code"));
    }
}
