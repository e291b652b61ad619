//! Test helpers: PDF and DOCX writers (documents are generated at test
//! time, never committed as binaries) and a small deterministic embedder.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use hearth_rag::{Embedder, RagError};
use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream};

/// Writes a PDF with one page per entry of `pages` (lines of text), each
/// page with a running `header` line at the top and its number at the foot.
pub fn write_pdf(path: &Path, header: &str, pages: &[Vec<String>]) {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut kids = Vec::new();
    for (n, lines) in pages.iter().enumerate() {
        let mut ops = Vec::new();
        let mut line = |text: &str, y: i64| {
            ops.push(Operation::new("BT", vec![]));
            ops.push(Operation::new("Tf", vec!["F1".into(), 9.into()]));
            ops.push(Operation::new("Td", vec![40.into(), y.into()]));
            ops.push(Operation::new(
                "Tj",
                vec![Object::string_literal(latin1(text))],
            ));
            ops.push(Operation::new("ET", vec![]));
        };
        line(header, 810);
        for (i, l) in lines.iter().enumerate() {
            line(l, 780 - 11 * i as i64);
        }
        line(&(n + 1).to_string(), 30);
        let content = Content { operations: ops };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        kids.push(Object::from(doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        })));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    doc.compress();
    doc.save(path).unwrap();
}

/// Text as WinAnsi bytes (characters outside Latin-1 become close ASCII).
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' => b'-',
            '\u{2018}' | '\u{2019}' => b'\'',
            '\u{201c}' | '\u{201d}' => b'"',
            c if (c as u32) < 256 => c as u8,
            _ => b'?',
        })
        .collect()
}

/// Lines of a text file laid out as PDF pages of `per_page` lines.
pub fn pages_of(text: &str, per_page: usize) -> Vec<Vec<String>> {
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.chunks(per_page).map(<[String]>::to_vec).collect()
}

/// Writes a DOCX whose paragraphs are `(style, text)`; a `\n` in a text
/// is a line break inside its paragraph.
pub fn write_docx(path: &Path, paragraphs: &[(&str, String)]) {
    let mut body = String::new();
    for (style, text) in paragraphs {
        body.push_str("<w:p>");
        if !style.is_empty() {
            body.push_str(&format!("<w:pPr><w:pStyle w:val=\"{style}\"/></w:pPr>"));
        }
        body.push_str("<w:r>");
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                body.push_str("<w:br/>");
            }
            body.push_str(&format!(
                "<w:t xml:space=\"preserve\">{}</w:t>",
                xml_escape(line)
            ));
        }
        body.push_str("</w:r></w:p>");
    }
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
         <w:body>{body}</w:body></w:document>"
    );
    write_zip(path, &[("word/document.xml", doc.as_bytes())]);
}

pub fn write_zip(path: &Path, members: &[(&str, &[u8])]) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    z.start_file("[Content_Types].xml", opts).unwrap();
    z.write_all(b"<?xml version=\"1.0\"?><Types/>").unwrap();
    for (name, data) in members {
        z.start_file(*name, opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A deterministic embedder for tests of storage and retrieval plumbing:
/// words hashed into a bag of `dim` (64 by default) counts, normalised. It counts each
/// embedded text, so tests can see what was (re-)embedded.
pub struct BagEmbedder {
    pub name: String,
    pub embedded: std::cell::Cell<usize>,
    pub dim: usize,
}

impl BagEmbedder {
    pub fn new(name: &str) -> BagEmbedder {
        BagEmbedder::with_dim(name, 64)
    }

    pub fn with_dim(name: &str, dim: usize) -> BagEmbedder {
        BagEmbedder {
            name: name.into(),
            embedded: std::cell::Cell::new(0),
            dim,
        }
    }
}

impl Embedder for BagEmbedder {
    fn model_name(&self) -> &str {
        &self.name
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn max_tokens(&self) -> usize {
        512
    }
    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, RagError> {
        self.embedded.set(self.embedded.get() + texts.len());
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; self.dim];
                for w in t
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                {
                    let h = w
                        .to_lowercase()
                        .bytes()
                        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
                    v[h as usize % self.dim] += 1.0;
                }
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter().map(|x| x / n).collect()
            })
            .collect())
    }
}
