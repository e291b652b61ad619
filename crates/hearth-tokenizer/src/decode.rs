//! Token pieces, detokenization and streaming decode.

use crate::unicode;
use crate::vocab::{attr, Vocab};
use crate::Tokenizer;

/// Every token's rendered bytes (`token_to_piece(special = true)`), stored
/// back to back.
#[derive(Debug)]
pub(crate) struct Pieces {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

/// Which tokenizer family renders the pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PieceStyle {
    /// SentencePiece: `▁` is a space.
    Spm,
    /// Byte-level BPE: each char is one byte through the GPT-2 map.
    Bpe,
}

impl Pieces {
    pub fn build(vocab: &Vocab, style: PieceStyle) -> Pieces {
        let mut bytes = Vec::with_capacity(vocab.texts().iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(vocab.len());
        for id in 0..vocab.len() as u32 {
            render_piece(vocab, style, id, &mut bytes);
            ends.push(bytes.len());
        }
        Pieces { bytes, ends }
    }

    pub fn get(&self, id: u32) -> &[u8] {
        let i = id as usize;
        let Some(&end) = self.ends.get(i) else {
            return &[];
        };
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..end]
    }
}

/// llama.cpp's `token_to_piece` for one token, with `special = true`.
fn render_piece(vocab: &Vocab, style: PieceStyle, id: u32, out: &mut Vec<u8>) {
    let a = vocab.attr(id);
    let text = vocab.text(id);
    if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
        out.extend_from_slice(text.as_bytes());
    } else if a & attr::NORMAL != 0 {
        match style {
            PieceStyle::Spm => out.extend_from_slice(text.replace('▁', " ").as_bytes()),
            PieceStyle::Bpe => {
                for c in text.chars() {
                    match unicode::char_to_byte(c) {
                        Some(b) => out.push(b),
                        None => {
                            // Upstream marks a char outside the byte map this way.
                            out.extend_from_slice(b"[UNK_BYTE_0x");
                            let mut buf = [0u8; 4];
                            for b in c.encode_utf8(&mut buf).bytes() {
                                out.extend_from_slice(format!("{b:02x}").as_bytes());
                            }
                            out.extend_from_slice(text.as_bytes());
                            out.push(b']');
                        }
                    }
                }
            }
        }
    } else if a & attr::BYTE != 0 {
        out.push(byte_of_byte_token(text));
    }
    // UNUSED-only and UNDEFINED tokens render as nothing.
}

/// The byte of a `<0xXX>` token: `strtol` of the two chars after `<0x`.
fn byte_of_byte_token(text: &str) -> u8 {
    let digits = text.as_bytes().get(3..).unwrap_or(&[]);
    let mut v: u32 = 0;
    for &d in digits.iter().take(2) {
        match (d as char).to_digit(16) {
            Some(x) => v = v * 16 + x,
            None => break,
        }
    }
    v as u8
}

/// `clean_up_tokenization_spaces`, the three in-place passes of
/// llama.cpp's `detokenize` (space before `?!.,`; " ' "; " 's", " 'm",
/// " 're", " 've").
pub(crate) fn clean_spaces(text: &mut Vec<u8>) {
    // Pass 1: " ?", " !", " .", " ,".
    let n = text.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
    // Pass 2: a lone apostrophe between spaces loses both spaces.
    let n = text.len();
    let mut total = usize::from(n > 0);
    let mut i = 1;
    while i < n {
        let x = text[i];
        if x == b'\'' && i + 1 < n && text[i - 1] == b' ' && text[i + 1] == b' ' {
            total -= 1;
            i += 1;
            text[i] = 0;
        }
        text[total] = x;
        total += 1;
        i += 1;
    }
    text.truncate(total);
    // Pass 3: " 's", " 'm", " 're", " 've" lose the space.
    let n = text.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && x == b'\'' && i + 1 < n {
            let x1 = text[i + 1];
            if x1 == b's' || x1 == b'm' {
                total -= 1;
            } else if x1 != b't' && x1 != b'd' && i + 2 < n {
                let x2 = text[i + 2];
                if (x1 == b'r' || x1 == b'v') && x2 == b'e' {
                    total -= 1;
                }
            }
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
}

/// Turns token ids into text as they arrive, emitting only complete UTF-8.
///
/// A character split across tokens (byte-fallback tokens, BPE byte pieces)
/// is held back until its last byte arrives. A byte sequence that can never
/// become valid UTF-8 is emitted as U+FFFD as soon as that is certain, so the
/// decoder never stalls; [`StreamDecoder::flush`] emits whatever is left.
///
/// ```no_run
/// # fn demo(tok: &hearth_tokenizer::Tokenizer, ids: &[u32]) {
/// use hearth_tokenizer::StreamDecoder;
/// let mut dec = StreamDecoder::new(tok);
/// let mut text = String::new();
/// for &id in ids {
///     text += &dec.push(tok, id);
/// }
/// text += &dec.flush();
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
    render_special: bool,
}

impl StreamDecoder {
    /// A decoder that renders control tokens as nothing (what a user sees).
    pub fn new(_tok: &Tokenizer) -> StreamDecoder {
        StreamDecoder {
            pending: Vec::new(),
            render_special: false,
        }
    }

    /// A decoder that renders control tokens as their text when `render_special`.
    pub fn with_special(_tok: &Tokenizer, render_special: bool) -> StreamDecoder {
        StreamDecoder {
            pending: Vec::new(),
            render_special,
        }
    }

    /// Adds one token; returns the text that is now complete (maybe empty).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> String {
        self.pending
            .extend_from_slice(tok.piece(id, self.render_special));
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, tail) = rest.split_at(e.valid_up_to());
                    // Checked by from_utf8 just above.
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            rest = &tail[bad..];
                        }
                        // An incomplete char at the end: wait for more bytes.
                        None => {
                            rest = tail;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }

    /// Emits the held-back bytes (an unfinished char becomes U+FFFD).
    pub fn flush(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }

    /// Whether bytes are held back waiting for the rest of a char.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> String {
        let mut v = s.as_bytes().to_vec();
        clean_spaces(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    }

    #[test]
    fn clean_spaces_matches_upstream_rules() {
        assert_eq!(clean("Hello , world !"), "Hello, world!");
        assert_eq!(clean("it ' s"), "it's");
        assert_eq!(
            clean("he 's here , they 're ok , we 'll go , don 't"),
            "he's here, they're ok, we 'll go, don 't"
        );
        assert_eq!(clean(""), "");
        assert_eq!(clean(" ."), ".");
    }

    #[test]
    fn byte_token_values() {
        assert_eq!(byte_of_byte_token("<0x0A>"), 0x0A);
        assert_eq!(byte_of_byte_token("<0xff>"), 0xFF);
        assert_eq!(byte_of_byte_token("<0x"), 0);
        assert_eq!(byte_of_byte_token("<0xG1>"), 0);
    }
}
