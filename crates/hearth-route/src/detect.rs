//! The validators behind the built-in detectors of [`crate::redact`]:
//! check digits, number plans and entropy. Each takes the regex's candidate
//! and returns the accepted length in bytes, or `None`.

/// Keys and tokens recognised by their prefix.
pub(crate) const SECRET_PREFIXED: &str = concat!(
    r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,}",
    r"|(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}",
    r"|github_pat_[A-Za-z0-9_]{40,}",
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}",
    r"|AKIA[0-9A-Z]{16}",
    r"|AIza[0-9A-Za-z_\-]{35}",
    r"|glpat-[A-Za-z0-9_\-]{20,}",
    r"|hf_[A-Za-z0-9]{30,}",
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{20,}",
    r"|eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})",
    r"|(?<=Bearer )[A-Za-z0-9._~+/\-]{16,}=*"
);

/// Phone candidates: international with `+` or `00`, and national formats.
pub(crate) const PHONE: &str = concat!(
    r"(?<![\w+])(?<!\d[ .\-])(?:\+|00)[1-9]\d{0,2}(?:[ .\-]?\(0\))?(?:[ .\-]?\(?\d{1,5}\)?){1,6}(?!\d)",
    r"|(?<![\w(])(?<!\d[ .\-])\(\d{3}\) ?\d{3}[\-. ]\d{4}(?!\d)",
    r"|(?<![\w\-.])(?<!\d )\d{3}([\-.])\d{3}\1\d{4}(?![\w\-])",
    r"|(?<![\w.])(?<!\d[ \-/])0[1-9](?:([ .\-]?)\d{2})(?:\2\d{2}){3}(?![\d])",
    r"|(?<![\w.])(?<!\d[ \-/])0\d{2,4}[ /\-]\d{3,4}[ \-]?\d{3,4}(?![\d])",
    r"|(?<![\w.])(?<!\d[ \-/])0\d{2,4}[ /]\d{5,8}(?![\d])"
);

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

pub(crate) fn phone(s: &str) -> Option<usize> {
    let n = digits(s).len();
    let s = s.trim_end_matches([' ', '.', '-', '(']);
    (8..=15).contains(&n).then_some(s.len())
}

pub(crate) fn luhn(d: &[u32]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum % 10 == 0
}

/// Whether the number starts like one of the card networks' numbers and has
/// their length.
fn card_prefix(d: &[u32]) -> bool {
    let p = |k: usize| d.iter().take(k).fold(0u32, |a, &x| a * 10 + x);
    let len = d.len();
    match d.first() {
        Some(4) => matches!(len, 13 | 16 | 19),
        Some(5) => (51..=55).contains(&p(2)) && len == 16,
        Some(2) => (2221..=2720).contains(&p(4)) && len == 16,
        Some(3) => {
            (matches!(p(2), 34 | 37) && len == 15)
                || (matches!(p(2), 36 | 38 | 30) && (14..=19).contains(&len))
                || ((3528..=3589).contains(&p(4)) && (16..=19).contains(&len))
        }
        Some(6) => {
            (p(4) == 6011 || p(2) == 65 || (644..=649).contains(&p(3)) || p(2) == 62)
                && (16..=19).contains(&len)
        }
        _ => false,
    }
}

pub(crate) fn card(s: &str) -> Option<usize> {
    let d = digits(s);
    (card_prefix(&d) && luhn(&d)).then_some(s.len())
}

/// IBAN lengths of the countries that use it most (others: any length
/// from 15 to 34 that passes the check).
fn iban_len(cc: &str) -> Option<usize> {
    Some(match cc {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "NL" | "FO" | "GL" => 18,
        "AT" | "EE" | "LU" | "LT" | "KZ" | "XK" => 20,
        "CH" | "LI" | "HR" | "LV" => 21,
        "DE" | "GB" | "IE" | "BG" | "BH" | "CR" | "GE" | "ME" | "RS" => 22,
        "AE" | "IL" | "TL" => 23,
        "ES" | "SE" | "CZ" | "SK" | "RO" | "SA" | "TN" | "MD" | "PK" | "VG" => 24,
        "PT" => 25,
        "IS" | "TR" => 26,
        "FR" | "IT" | "MC" | "SM" | "GR" | "MR" => 27,
        "PL" | "HU" | "CY" | "AL" | "AZ" | "DO" | "GT" | "LB" | "SV" => 28,
        "BR" | "QA" | "UA" => 29,
        "JO" | "KW" | "MU" => 30,
        "MT" => 31,
        _ => return None,
    })
}

fn mod97(chars: &[u8]) -> bool {
    // Move the first four characters to the end; letters count as 10..35.
    let mut rem: u32 = 0;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

pub(crate) fn iban(s: &str) -> Option<usize> {
    // The byte offset after the n-th alphanumeric character.
    let ends: Vec<(usize, u8)> = s
        .bytes()
        .enumerate()
        .filter(|(_, c)| *c != b' ')
        .map(|(i, c)| (i + 1, c))
        .collect();
    let chars: Vec<u8> = ends.iter().map(|&(_, c)| c).collect();
    let lens: Vec<usize> = match iban_len(&s[..2]) {
        Some(l) => vec![l],
        None => (15..=34).rev().collect(),
    };
    lens.into_iter()
        .filter(|&l| l <= chars.len())
        .find(|&l| mod97(&chars[..l]))
        .map(|l| ends[l - 1].0)
}

pub(crate) fn ssn(s: &str) -> Option<usize> {
    let d = digits(s);
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5..].iter().fold(0, |a, &x| a * 10 + x);
    (area != 0 && area != 666 && area < 900 && group != 0 && serial != 0).then_some(s.len())
}

pub(crate) fn nino(s: &str) -> Option<usize> {
    let p = &s[..2];
    (!matches!(p, "BG" | "GB" | "NK" | "KN" | "TN" | "NT" | "ZZ")).then_some(s.len())
}

pub(crate) fn insee(s: &str) -> Option<usize> {
    let t: String = s.chars().filter(|c| *c != ' ').collect();
    // Corsica: 2A and 2B count as 19 and 18 for the key.
    let (body, key) = t.split_at(13);
    let body = body.replace("2A", "19").replace("2B", "18");
    let n: u64 = body.parse().ok()?;
    let key: u64 = key.parse().ok()?;
    (97 - n % 97 == key).then_some(s.len())
}

pub(crate) fn dni(s: &str) -> Option<usize> {
    const LETTERS: &[u8] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let n: u32 = s[..8].parse().ok()?;
    let letter = *s.as_bytes().last()?;
    (LETTERS[(n % 23) as usize] == letter).then_some(s.len())
}

/// Shannon entropy of `s` in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

pub(crate) fn high_entropy(s: &str) -> Option<usize> {
    let has = |f: fn(&u8) -> bool| s.bytes().any(|b| f(&b));
    (has(u8::is_ascii_uppercase)
        && has(u8::is_ascii_lowercase)
        && has(u8::is_ascii_digit)
        && entropy(s) >= 4.0)
        .then_some(s.len())
}
