//! Personal data and secrets found in text, replaced by placeholders before
//! the text leaves the machine, and put back into the reply as it streams.
//!
//! Built-in detectors (each candidate is validated, not only matched):
//! - `email`: addresses with a dotted domain;
//! - `phone`: international numbers (`+` or `00` and a country code, 8–15
//!   digits) and the national formats of the US (`(415) 555-0132`,
//!   `415-555-0132`), France (`06 12 34 56 78`), the UK (`020 7946 0958`)
//!   and Germany (`030 12345678`, `0171/1234567`);
//! - `iban`: two letters, two check digits and the country's length
//!   (spaces allowed), accepted only when the ISO 13616 mod-97 check holds;
//! - `card`: 13–19 digits (spaces or dashes between groups) with a card
//!   network's prefix, accepted only when the Luhn check holds;
//! - `national_id`: US SSN (`123-45-6789`, excluding the never-issued 000,
//!   666 and 9xx areas, group 00 and serial 0000), UK National Insurance
//!   numbers (`QQ 12 34 56 C`, with the excluded prefixes), French INSEE
//!   numbers (15 digits, mod-97 key, Corsica 2A/2B) and Spanish DNI
//!   (8 digits and the mod-23 letter);
//! - `ip`: IPv4 dotted quads and IPv6 addresses (parsed by the standard
//!   library, so times like `10:30:00` are not taken);
//! - `secret`: API keys and tokens with well-known prefixes (`sk-`,
//!   `sk-ant-`, `ghp_`/`gho_`/`ghs_`/`ghu_`/`ghr_`/`github_pat_`, `xox?-`,
//!   `AKIA`, `AIza`, `glpat-`, `hf_`, `sk_live_`/`rk_live_`/`pk_live_`,
//!   JSON Web Tokens, `Bearer …`) and any other run of 24+ characters mixing
//!   upper case, lower case and digits whose Shannon entropy is at least
//!   4 bits per character;
//! - `custom`: the user's regular expressions and literal strings.
//!
//! Where findings overlap, the user's patterns win, then the order above
//! from `secret` down.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::str::FromStr;

use fancy_regex::Regex;

/// What a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Custom,
    Secret,
    Email,
    Iban,
    Card,
    NationalId,
    Ip,
    Phone,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Custom,
        Kind::Secret,
        Kind::Email,
        Kind::Iban,
        Kind::Card,
        Kind::NationalId,
        Kind::Ip,
        Kind::Phone,
    ];

    /// The name used in counts, the audit log and placeholders (upper-cased).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Custom => "custom",
            Kind::Secret => "secret",
            Kind::Email => "email",
            Kind::Iban => "iban",
            Kind::Card => "card",
            Kind::NationalId => "national_id",
            Kind::Ip => "ip",
            Kind::Phone => "phone",
        }
    }
}

/// One finding: `text[start..end]` (byte offsets) is of `kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// A bad user pattern.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("redaction pattern {pattern:?} is not a valid regular expression: {message}")]
    BadRegex { pattern: String, message: String },
    #[error("a redaction literal is empty")]
    EmptyLiteral,
}

struct Detector {
    kind: Kind,
    re: Regex,
    /// Accepts a candidate and may shorten it: returns the accepted byte length.
    check: fn(&str) -> Option<usize>,
}

/// Finds personal data and secrets in text.
pub struct Redactor {
    detectors: Vec<Detector>,
    custom: Vec<Regex>,
    literals: Vec<String>,
}

fn built_in(pattern: &str) -> Regex {
    // The built-in patterns are constants covered by the tests.
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern}: {e}"))
}

fn whole(s: &str) -> Option<usize> {
    Some(s.len())
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new()
    }
}

impl Redactor {
    /// The built-in detectors, no user patterns.
    pub fn new() -> Redactor {
        let d = |kind, p: &str, check| Detector {
            kind,
            re: built_in(p),
            check,
        };
        let detectors = vec![
            d(Kind::Secret, crate::detect::SECRET_PREFIXED, whole),
            d(
                Kind::Secret,
                r"\b[A-Za-z0-9][A-Za-z0-9+/_\-]{23,}={0,2}",
                crate::detect::high_entropy,
            ),
            d(
                Kind::Email,
                r"(?i)\b[a-z0-9][a-z0-9._%+\-]*@[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*\.[a-z]{2,}\b",
                whole,
            ),
            d(
                Kind::Iban,
                r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}",
                crate::detect::iban,
            ),
            d(
                Kind::Card,
                r"(?<![\d.,])\d(?:[ \-]?\d){12,18}(?![\d])",
                crate::detect::card,
            ),
            d(
                Kind::NationalId,
                r"(?<![\d\-])\d{3}([- ])\d{2}\1\d{4}(?![\d\-])",
                crate::detect::ssn,
            ),
            d(
                Kind::NationalId,
                r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
                crate::detect::nino,
            ),
            d(
                Kind::NationalId,
                r"(?<![\d])[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?![\d])",
                crate::detect::insee,
            ),
            d(
                Kind::NationalId,
                r"(?<![\d])\d{8}[- ]?[A-Z]\b",
                crate::detect::dni,
            ),
            d(
                Kind::Ip,
                r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d]|\.\d)",
                whole,
            ),
            d(
                Kind::Ip,
                r"(?<![0-9A-Za-z:])[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*",
                ipv6,
            ),
            d(Kind::Phone, crate::detect::PHONE, crate::detect::phone),
        ];
        Redactor {
            detectors,
            custom: Vec::new(),
            literals: Vec::new(),
        }
    }

    /// Adds a user regular expression (its matches are of kind `custom`).
    pub fn with_regex(mut self, pattern: &str) -> Result<Redactor, RedactError> {
        let re = Regex::new(pattern).map_err(|e| RedactError::BadRegex {
            pattern: pattern.to_string(),
            message: e.to_string(),
        })?;
        self.custom.push(re);
        Ok(self)
    }

    /// Adds a literal string (matched exactly; kind `custom`).
    pub fn with_literal(mut self, literal: &str) -> Result<Redactor, RedactError> {
        if literal.is_empty() {
            return Err(RedactError::EmptyLiteral);
        }
        self.literals.push(literal.to_string());
        Ok(self)
    }

    /// Every finding in `text`, sorted by position, none overlapping.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        let mut all: Vec<Finding> = Vec::new();
        for l in &self.literals {
            for (i, _) in text.match_indices(l.as_str()) {
                all.push(Finding {
                    kind: Kind::Custom,
                    start: i,
                    end: i + l.len(),
                });
            }
        }
        for re in &self.custom {
            for m in re.find_iter(text).flatten() {
                if m.end() > m.start() {
                    all.push(Finding {
                        kind: Kind::Custom,
                        start: m.start(),
                        end: m.end(),
                    });
                }
            }
        }
        for d in &self.detectors {
            for m in d.re.find_iter(text).flatten() {
                if let Some(len) = (d.check)(m.as_str()) {
                    all.push(Finding {
                        kind: d.kind,
                        start: m.start(),
                        end: m.start() + len,
                    });
                }
            }
        }
        // Earlier kinds first (the user's, then secrets, ...), longer first.
        all.sort_by_key(|f| (f.kind, std::cmp::Reverse(f.end - f.start), f.start));
        let mut kept: Vec<Finding> = Vec::new();
        for f in all {
            if kept.iter().all(|k| f.end <= k.start || f.start >= k.end) {
                kept.push(f);
            }
        }
        kept.sort_by_key(|f| f.start);
        kept
    }
}

fn ipv6(s: &str) -> Option<usize> {
    let t = s.trim_end_matches('.');
    let t = if t.ends_with(':') && !t.ends_with("::") {
        t.trim_end_matches(':')
    } else {
        t
    };
    let hexdigits = t.bytes().filter(u8::is_ascii_hexdigit).count();
    (hexdigits >= 2 && Ipv6Addr::from_str(t).is_ok()).then_some(t.len())
}

/// Replaces findings by placeholders (`[EMAIL_1]`, the same original always
/// getting the same placeholder) across all the texts of one request, and
/// remembers them for restoring the reply.
#[derive(Debug, Default, Clone)]
pub struct Session {
    /// placeholder -> original
    originals: BTreeMap<String, String>,
    /// original -> placeholder
    placeholders: BTreeMap<String, String>,
    next: BTreeMap<Kind, usize>,
    counts: BTreeMap<String, u64>,
}

impl Session {
    pub fn new() -> Session {
        Session::default()
    }

    /// `text` with every finding of `r` replaced by its placeholder.
    pub fn redact(&mut self, r: &Redactor, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for f in r.find(text) {
            out.push_str(&text[at..f.start]);
            let original = &text[f.start..f.end];
            *self.counts.entry(f.kind.name().to_string()).or_default() += 1;
            let ph = match self.placeholders.get(original) {
                Some(p) => p.clone(),
                None => {
                    let n = self.next.entry(f.kind).or_insert(0);
                    *n += 1;
                    let p = format!("[{}_{}]", f.kind.name().to_uppercase(), n);
                    self.placeholders.insert(original.to_string(), p.clone());
                    self.originals.insert(p.clone(), original.to_string());
                    p
                }
            };
            out.push_str(&ph);
            at = f.end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// How many items of each kind were replaced.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    /// A restorer for the reply to the texts redacted so far.
    pub fn restorer(&self) -> Restorer {
        Restorer {
            originals: self.originals.clone(),
            pending: String::new(),
        }
    }
}

/// Puts originals back in place of placeholders in a reply that arrives in
/// chunks; a placeholder split across chunks is held back until complete.
#[derive(Debug, Clone)]
pub struct Restorer {
    originals: BTreeMap<String, String>,
    pending: String,
}

impl Restorer {
    /// Feeds one chunk; returns the text that can be passed on now.
    pub fn push(&mut self, chunk: &str) -> String {
        self.pending.push_str(chunk);
        let buf = std::mem::take(&mut self.pending);
        let mut out = String::with_capacity(buf.len());
        let mut rest = buf.as_str();
        while let Some(i) = rest.find('[') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some((ph, orig)) = self
                .originals
                .iter()
                .find(|(p, _)| tail.starts_with(p.as_str()))
            {
                out.push_str(orig);
                rest = &tail[ph.len()..];
            } else if self.originals.keys().any(|p| p.starts_with(tail)) {
                // Possibly a placeholder cut by the chunk boundary: wait.
                self.pending = tail.to_string();
                return out;
            } else {
                out.push('[');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        out
    }

    /// The end of the reply: whatever was held back.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    /// Restores a whole (non-streamed) reply.
    pub fn restore(&self, text: &str) -> String {
        let mut r = self.clone();
        r.pending.clear();
        let mut s = r.push(text);
        s.push_str(&r.finish());
        s
    }
}
