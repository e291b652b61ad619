//! Text out of documents, as a list of blocks (headings, paragraphs, code,
//! table rows) with the page each is on.
//!
//! Every format is read under [`Limits`]: files larger than
//! `max_file_bytes` are not opened, compressed parts are inflated at most
//! to `max_inflated_bytes`, and extraction runs on its own thread for at
//! most `max_seconds` (a PDF whose parser loops is abandoned, not waited
//! for). A file that cannot be read is a [`Skip`] with a reason, never a
//! panic: a parser that panics is caught and reported the same way.

mod docx;
mod html;
mod pdf;
mod text;

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// What a block of a document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A heading of this level (1 = top).
    Heading(u8),
    /// A paragraph or list item: may be split between chunks.
    Text,
    /// Preformatted text (a code block): kept whole when it fits a chunk.
    Code,
    /// One record of a table (a CSV row as `column: value` lines).
    Row,
}

/// One block of extracted text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub kind: Kind,
    pub text: String,
    /// 1-based page number (PDF only).
    pub page: Option<u32>,
}

impl Block {
    pub fn new(kind: Kind, text: impl Into<String>) -> Block {
        Block {
            kind,
            text: text.into(),
            page: None,
        }
    }
}

/// The formats hearth reads, by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pdf,
    Docx,
    Html,
    Markdown,
    Text,
    Csv,
}

impl Format {
    /// The format a file name says, or `None` for one hearth does not read.
    /// A name without an extension (`README`, `NEWS`) is read as text.
    pub fn of(path: &Path) -> Option<Format> {
        let Some(ext) = path.extension() else {
            return Some(Format::Text);
        };
        let ext = ext.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "pdf" => Format::Pdf,
            "docx" => Format::Docx,
            "html" | "htm" | "xhtml" => Format::Html,
            "md" | "markdown" => Format::Markdown,
            "txt" | "text" | "rst" | "log" => Format::Text,
            "csv" => Format::Csv,
            _ => return None,
        })
    }
}

/// Bounds on what extraction may take.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Files larger than this are skipped unread.
    pub max_file_bytes: u64,
    /// Most bytes a compressed part (a DOCX's XML, a PDF stream) may inflate to.
    pub max_inflated_bytes: u64,
    /// Extraction of one file is abandoned after this long.
    pub max_seconds: f64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: 64 << 20,
            max_inflated_bytes: 64 << 20,
            max_seconds: 30.0,
        }
    }
}

/// Why a file was not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip(pub String);

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn skip<T>(why: impl Into<String>) -> Result<T, Skip> {
    Err(Skip(why.into()))
}

/// The blocks of `bytes`, read as `format`, under `limits` (size, inflation
/// and time). Empty documents are a skip too: there is nothing to index.
pub fn extract(format: Format, bytes: Vec<u8>, limits: &Limits) -> Result<Vec<Block>, Skip> {
    if bytes.len() as u64 > limits.max_file_bytes {
        return skip(format!(
            "{} bytes is over the {}-byte limit",
            bytes.len(),
            limits.max_file_bytes
        ));
    }
    let (tx, rx) = mpsc::channel();
    let lim = limits.clone();
    let worker = std::thread::Builder::new()
        .name("hearth-extract".into())
        .spawn(move || {
            let r = std::panic::catch_unwind(|| parse(format, &bytes, &lim));
            let _ = tx.send(r);
        });
    if worker.is_err() {
        return skip("could not start an extraction thread");
    }
    let secs = Duration::from_secs_f64(limits.max_seconds.max(0.001));
    let blocks = match rx.recv_timeout(secs) {
        Ok(Ok(r)) => r?,
        Ok(Err(_)) => return skip("the document's structure is broken (its parser gave up)"),
        // The thread is left to finish on its own; its result is dropped.
        Err(_) => {
            return skip(format!(
                "extraction took longer than {:.0} s",
                limits.max_seconds
            ))
        }
    };
    if blocks.iter().all(|b| b.text.trim().is_empty()) {
        return skip("no text in the document");
    }
    Ok(blocks)
}

fn parse(format: Format, bytes: &[u8], limits: &Limits) -> Result<Vec<Block>, Skip> {
    match format {
        Format::Pdf => pdf::blocks(bytes, limits),
        Format::Docx => docx::blocks(bytes, limits),
        Format::Html => html::blocks(&text::decode(bytes)?),
        Format::Markdown => Ok(text::markdown(&text::decode(bytes)?)),
        Format::Text => Ok(text::plain(&text::decode(bytes)?)),
        Format::Csv => text::csv(&text::decode(bytes)?),
    }
}

/// Joins words hyphenated across line ends (`retrie-\nval` → `retrieval`)
/// and unwraps the lines of a paragraph; keeps a hyphen before an upper-case
/// letter or digit (`Content-\nType` stays `Content-Type`).
pub fn join_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if out.is_empty() {
            out.push_str(line);
            continue;
        }
        let next = line.chars().next().unwrap_or(' ');
        let after_word = out.ends_with('-')
            && out[..out.len() - 1]
                .chars()
                .next_back()
                .is_some_and(char::is_alphabetic);
        if after_word && next.is_lowercase() {
            out.pop();
        } else if !after_word {
            out.push(' ');
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyphenated_line_ends_join_and_compounds_stay() {
        assert_eq!(
            join_lines("dense retrie-\nval works\nwith Content-\nType"),
            "dense retrieval works with Content-Type"
        );
    }

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of(Path::new("a/B.PDF")), Some(Format::Pdf));
        assert_eq!(Format::of(Path::new("x.htm")), Some(Format::Html));
        assert_eq!(Format::of(Path::new("x.exe")), None);
        assert_eq!(Format::of(Path::new("README")), Some(Format::Text));
    }

    #[test]
    fn oversized_input_is_skipped_unparsed() {
        let lim = Limits {
            max_file_bytes: 4,
            ..Limits::default()
        };
        let e = extract(Format::Text, b"hello world".to_vec(), &lim).unwrap_err();
        assert!(e.0.contains("over the 4-byte limit"), "{e}");
    }
}
