//! Codepoint classes and the GPT-2 byte↔unicode map, as llama.cpp defines them
//! (`src/unicode.cpp`, `src/unicode-data.cpp`).
//!
//! The pre-tokenizers decide word boundaries from these classes, so they must
//! be llama.cpp's and not the platform's: the category table is generated from
//! the same Unicode version (15.1, `tools/gen_unicode_data.py`), and
//! "whitespace" is Unicode's `White_Space` property, checked separately from
//! the category (U+0020 is a separator *and* whitespace).

mod data;
mod lower;
mod nfd;

use data::CATEGORY_RANGES;
use lower::LOWERCASE;
use nfd::NFD_BASE;

/// The class bits of one codepoint (llama.cpp's `unicode_cpt_flags`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags(u16);

// All category bits are listed, though the matchers test only some.
#[allow(dead_code)]
impl Flags {
    pub const UNDEFINED: u16 = 0x0001;
    pub const NUMBER: u16 = 0x0002; // \p{N}
    pub const LETTER: u16 = 0x0004; // \p{L}
    pub const SEPARATOR: u16 = 0x0008; // \p{Z}
    pub const MARK: u16 = 0x0010; // \p{M}
    pub const PUNCTUATION: u16 = 0x0020; // \p{P}
    pub const SYMBOL: u16 = 0x0040; // \p{S}
    pub const CONTROL: u16 = 0x0080; // \p{C}
    pub const WHITESPACE: u16 = 0x0100; // \s

    /// The flags of a position outside the text: no class at all.
    pub const NONE: Flags = Flags(0);

    pub fn is_number(self) -> bool {
        self.0 & Self::NUMBER != 0
    }
    pub fn is_letter(self) -> bool {
        self.0 & Self::LETTER != 0
    }
    pub fn is_mark(self) -> bool {
        self.0 & Self::MARK != 0
    }
    pub fn is_whitespace(self) -> bool {
        self.0 & Self::WHITESPACE != 0
    }
    pub fn is_punctuation(self) -> bool {
        self.0 & Self::PUNCTUATION != 0
    }
    pub fn is_symbol(self) -> bool {
        self.0 & Self::SYMBOL != 0
    }
    pub fn is_control(self) -> bool {
        self.0 & Self::CONTROL != 0
    }
    /// Any class bit set (false only for [`Flags::NONE`]).
    pub fn any(self) -> bool {
        self.0 != 0
    }
    /// The general-category bit alone (`category_flag()` upstream).
    pub fn category(self) -> u16 {
        self.0 & 0x00FF
    }
}

/// Unicode `White_Space` (PropList.txt), the set llama.cpp uses for `\s`.
pub(crate) fn is_whitespace(cpt: u32) -> bool {
    matches!(
        cpt,
        0x09..=0x0D | 0x20 | 0x85 | 0xA0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000
    )
}

/// Class flags of a codepoint. Values past U+10FFFF are "undefined".
pub(crate) fn flags(cpt: u32) -> Flags {
    let category = match CATEGORY_RANGES.binary_search_by(|&(start, _)| start.cmp(&cpt)) {
        Ok(i) => CATEGORY_RANGES[i].1,
        Err(0) => Flags::UNDEFINED as u8,
        Err(i) => CATEGORY_RANGES[i - 1].1,
    };
    let category = if cpt > 0x10FFFF {
        Flags::UNDEFINED as u8
    } else {
        category
    };
    let ws = if is_whitespace(cpt) {
        Flags::WHITESPACE
    } else {
        0
    };
    Flags(category as u16 | ws)
}

/// Simple lowercase mapping of one codepoint (`unicode_tolower`, Unicode
/// 15.1's UnicodeData): the codepoint itself when it has none.
pub(crate) fn to_lower(cpt: u32) -> u32 {
    match LOWERCASE.binary_search_by(|&(c, _)| c.cmp(&cpt)) {
        Ok(i) => LOWERCASE[i].1,
        Err(_) => cpt,
    }
}

/// The first codepoint of a codepoint's NFD decomposition: the base letter
/// without its combining marks (`unicode_cpts_normalize_nfd`).
pub(crate) fn nfd_base(cpt: u32) -> u32 {
    let i = NFD_BASE.partition_point(|&(first, _, _)| first <= cpt);
    match i.checked_sub(1).map(|i| NFD_BASE[i]) {
        Some((first, last, base)) if first <= cpt && cpt <= last => base,
        _ => cpt,
    }
}

/// Han ideographs (CJK Unified Ideographs, extensions A–F, compatibility
/// ideographs), as llama.cpp's `unicode_cpt_is_han`.
pub(crate) fn is_han(cpt: u32) -> bool {
    matches!(
        cpt,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B820..=0x2CEAF
            | 0x2CEB0..=0x2EBEF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

/// The GPT-2 byte-to-unicode table: printable Latin-1 bytes map to
/// themselves, the other 68 bytes to U+0100.. in byte order.
pub(crate) const fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    let mut b = 0usize;
    while b < 256 {
        let printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        let cpt = if printable {
            b as u32
        } else {
            n += 1;
            255 + n
        };
        // Every value here is below U+0200, so always a valid char.
        table[b] = match char::from_u32(cpt) {
            Some(c) => c,
            None => '\0',
        };
        b += 1;
    }
    table
}

pub(crate) static BYTE_TO_CHAR: [char; 256] = byte_to_char_table();

const fn char_to_byte_table() -> [i16; 0x144] {
    let fwd = byte_to_char_table();
    let mut inv = [-1i16; 0x144];
    let mut b = 0usize;
    while b < 256 {
        inv[fwd[b] as usize] = b as i16;
        b += 1;
    }
    inv
}

static CHAR_TO_BYTE: [i16; 0x144] = char_to_byte_table();

/// Inverse of [`BYTE_TO_CHAR`]: the byte a GPT-2 unicode char stands for.
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    let v = *CHAR_TO_BYTE.get(c as usize)?;
    u8::try_from(v).ok()
}

/// Codepoints of a string.
pub(crate) fn codepoints(text: &str) -> Vec<u32> {
    text.chars().map(|c| c as u32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_common_codepoints() {
        assert!(flags('a' as u32).is_letter());
        assert!(flags('7' as u32).is_number());
        assert!(flags(' ' as u32).is_whitespace());
        assert_eq!(flags(' ' as u32).category(), Flags::SEPARATOR);
        assert!(flags('\n' as u32).is_whitespace());
        assert_eq!(flags('\n' as u32).category(), Flags::CONTROL);
        assert!(flags('é' as u32).is_letter());
        assert!(flags('你' as u32).is_letter());
        assert_eq!(flags('😀' as u32).category(), Flags::SYMBOL);
        assert_eq!(flags(0x200D).category(), Flags::CONTROL); // ZWJ is Cf
        assert_eq!(flags(0x0378).category(), Flags::UNDEFINED);
        assert!(flags(0x3000).is_whitespace());
        assert!(!flags(0x200B).is_whitespace()); // zero width space is not White_Space
                                                 // Unicode 15.1 additions, as in llama.cpp's table.
        assert_eq!(flags(0x31EF).category(), Flags::SYMBOL);
        assert!(flags(0x2EBF0).is_letter());
    }

    #[test]
    fn simple_lowercase_and_nfd_bases() {
        assert_eq!(to_lower('A' as u32), 'a' as u32);
        assert_eq!(to_lower('a' as u32), 'a' as u32);
        assert_eq!(to_lower('Ä' as u32), 'ä' as u32);
        assert_eq!(to_lower('Σ' as u32), 'σ' as u32);
        // U+0130's full lowercase has two codepoints; the simple one is 'i'.
        assert_eq!(to_lower(0x130), 'i' as u32);
        assert_eq!(to_lower('Б' as u32), 'б' as u32);
        assert_eq!(nfd_base('é' as u32), 'e' as u32);
        assert_eq!(nfd_base('Å' as u32), 'A' as u32);
        assert_eq!(nfd_base('ǖ' as u32), 'u' as u32);
        assert_eq!(nfd_base('e' as u32), 'e' as u32);
        assert_eq!(nfd_base('가' as u32), 0x1100); // Hangul: the leading jamo
        assert_eq!(nfd_base(0x10FFFF), 0x10FFFF);
    }

    #[test]
    fn gpt2_byte_map_round_trips() {
        assert_eq!(BYTE_TO_CHAR[b' ' as usize], 'Ġ');
        assert_eq!(BYTE_TO_CHAR[b'\n' as usize], 'Ċ');
        assert_eq!(BYTE_TO_CHAR[b'a' as usize], 'a');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(BYTE_TO_CHAR[b as usize]), Some(b));
        }
        assert_eq!(char_to_byte('€'), None);
    }
}
