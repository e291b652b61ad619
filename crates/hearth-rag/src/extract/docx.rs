//! DOCX: the paragraphs of `word/document.xml` (a zip member), with
//! heading levels from the paragraph styles and the line breaks inside a
//! paragraph kept (code pasted into a document keeps its lines).

use std::io::{Cursor, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{skip, Block, Kind, Limits, Skip};

pub fn blocks(bytes: &[u8], limits: &Limits) -> Result<Vec<Block>, Skip> {
    let mut zip = match zip::ZipArchive::new(Cursor::new(bytes)) {
        Ok(z) => z,
        Err(e) => return skip(format!("not a DOCX (zip) file: {e}")),
    };
    let member = match zip.by_name("word/document.xml") {
        Ok(m) => m,
        Err(_) => return skip("not a DOCX file: it has no word/document.xml"),
    };
    let cap = limits.max_inflated_bytes;
    if member.size() > cap {
        return skip(format!(
            "word/document.xml says it inflates to {} bytes, over the {cap}-byte limit",
            member.size()
        ));
    }
    // The declared size may lie: read at most one byte past the limit.
    let mut xml = Vec::new();
    if let Err(e) = member.take(cap + 1).read_to_end(&mut xml) {
        return skip(format!("a corrupt DOCX file: {e}"));
    }
    if xml.len() as u64 > cap {
        return skip(format!(
            "word/document.xml inflates beyond the {cap}-byte limit"
        ));
    }
    paragraphs(&xml)
}

fn paragraphs(xml: &[u8]) -> Result<Vec<Block>, Skip> {
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().trim_text(false);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut text = String::new();
    let mut kind = Kind::Text;
    let mut in_text = false;
    loop {
        let ev = match reader.read_event_into(&mut buf) {
            Ok(ev) => ev,
            Err(e) => return skip(format!("a corrupt DOCX file: {e}")),
        };
        match ev {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"w:p" => {
                    text.clear();
                    kind = Kind::Text;
                }
                b"w:pStyle" => kind = style_kind(&e),
                b"w:t" => in_text = true,
                b"w:br" | b"w:cr" => text.push('\n'),
                b"w:tab" => text.push('\t'),
                _ => {}
            },
            Event::Text(t) if in_text => match t.unescape() {
                Ok(s) => text.push_str(&s),
                Err(e) => return skip(format!("a corrupt DOCX file: {e}")),
            },
            Event::End(e) => match e.name().as_ref() {
                b"w:t" => in_text = false,
                b"w:p" => {
                    let t = std::mem::take(&mut text);
                    let t = t.trim_end();
                    if !t.trim().is_empty() {
                        out.push(Block::new(kind, t));
                    }
                }
                _ => {}
            },
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

/// `Heading1`…`Heading6` and `Title` are headings; preformatted and code
/// styles are code; anything else is text.
fn style_kind(e: &BytesStart) -> Kind {
    let Ok(Some(v)) = e.try_get_attribute("w:val") else {
        return Kind::Text;
    };
    let v = String::from_utf8_lossy(&v.value).to_ascii_lowercase();
    if v == "title" {
        return Kind::Heading(1);
    }
    if let Some(n) = v.strip_prefix("heading").and_then(|n| n.parse::<u8>().ok()) {
        return Kind::Heading(n.clamp(1, 6));
    }
    if v.contains("code") || v.contains("preformatted") || v.contains("sourcecode") {
        return Kind::Code;
    }
    Kind::Text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_breaks_and_text_runs() {
        let xml = br#"<w:document xmlns:w="x"><w:body>
            <w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Install</w:t></w:r></w:p>
            <w:p><w:r><w:t xml:space="preserve">Run </w:t></w:r><w:r><w:t>this &amp; that:</w:t><w:br/><w:t>make</w:t></w:r></w:p>
            <w:p/></w:body></w:document>"#;
        let b = paragraphs(xml).unwrap();
        assert_eq!(
            b,
            vec![
                Block::new(Kind::Heading(2), "Install"),
                Block::new(Kind::Text, "Run this & that:\nmake")
            ]
        );
    }

    #[test]
    fn not_a_zip_is_skipped() {
        let e = blocks(b"PK\x03\x04garbage", &Limits::default()).unwrap_err();
        assert!(e.0.contains("not a DOCX"), "{e}");
    }
}
