//! The `classify` policy's decision, made before generation: rules on the
//! prompt (length, code, maths, tools), then an embedding classifier from
//! the route's labelled examples (nearest centroid, or kNN with `k`).

use crate::config::Route;
use crate::policy::When;

/// Something that turns text into a vector (a local embedding model).
pub trait Embed {
    fn embed(&mut self, text: &str) -> Result<Vec<f32>, String>;
}

/// Whether `prompt` holds source code: a fenced block, or at least two
/// lines that read as code (keywords followed by syntax, lines ending in
/// `{`, `;` or `:` after a keyword).
pub fn has_code(prompt: &str) -> bool {
    if prompt.contains("```") {
        return true;
    }
    const STARTS: &[&str] = &[
        "def ",
        "fn ",
        "function ",
        "class ",
        "import ",
        "from ",
        "#include",
        "public ",
        "private ",
        "let ",
        "const ",
        "var ",
        "return ",
        "if (",
        "for (",
        "while (",
        "SELECT ",
        "package ",
        "use ",
        "struct ",
        "impl ",
        "print(",
        "console.log(",
    ];
    let mut lines = 0;
    for l in prompt.lines() {
        let t = l.trim();
        let syntax = t.ends_with('{')
            || t.ends_with(';')
            || t.ends_with(':')
            || t.ends_with(')')
            || t.contains(" = ")
            || t.contains("=>")
            || t.contains("->");
        if STARTS.iter().any(|s| t.starts_with(s)) && syntax {
            lines += 1;
        }
    }
    lines >= 2
        || [
            "code", "function", "program", "script", "bug", "compile", "regex", "sql",
        ]
        .iter()
        .any(|w| has_word(prompt, w))
            && ["write", "fix", "debug", "implement", "refactor"]
                .iter()
                .any(|w| has_word(prompt, w))
}

/// Whether `prompt` asks for mathematics: an equation or arithmetic between
/// numbers, LaTeX, or words of maths.
pub fn has_maths(prompt: &str) -> bool {
    if prompt.contains("\\frac") || prompt.contains("\\int") || prompt.contains("\\sum") {
        return true;
    }
    let b = prompt.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if matches!(c, b'+' | b'*' | b'/' | b'^' | b'=' | b'-' | b'x' | b'%')
            && i > 0
            && i + 1 < b.len()
        {
            let left = b[..i].iter().rev().find(|c| **c != b' ');
            let right = b[i + 1..].iter().find(|c| **c != b' ');
            let operand = |c: Option<&u8>| {
                c.is_some_and(|c| {
                    c.is_ascii_digit() || matches!(c, b')' | b'(' | b'x' | b'y' | b'n')
                })
            };
            let digit = |c: Option<&u8>| c.is_some_and(u8::is_ascii_digit);
            // Two operands, one of them a digit; `x` only between digits.
            if c == b'x' {
                if digit(left) && digit(right) && b[i - 1] == b' ' && b[i + 1] == b' ' {
                    return true;
                }
            } else if c == b'-' {
                if digit(left) && digit(right) && b[i - 1] == b' ' {
                    return true;
                }
            } else if operand(left) && operand(right) && (digit(left) || digit(right)) {
                return true;
            }
        }
    }
    [
        "equation",
        "integral",
        "derivative",
        "prove",
        "theorem",
        "solve",
        "calculate",
        "compute",
        "sum of",
        "product of",
        "square root",
        "probability",
        "how many",
        "how much",
        "percent",
    ]
    .iter()
    .any(|w| has_word(&prompt.to_lowercase(), w))
}

/// `w` in `text` with a non-letter on both sides.
fn has_word(text: &str, w: &str) -> bool {
    let lower = text.to_lowercase();
    lower.match_indices(w).any(|(i, _)| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + w.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The request as the rules see it.
pub struct Prompt<'a> {
    pub text: &'a str,
    /// The request offers tools.
    pub tools: bool,
}

/// The first rule of `r` that matches, as (target, reason).
pub fn by_rules(r: &Route, p: &Prompt) -> Option<(String, String)> {
    for rule in &r.rules {
        let why = match rule.when {
            When::Code if has_code(p.text) => "the prompt holds code".to_string(),
            When::Maths if has_maths(p.text) => "the prompt asks for maths".to_string(),
            When::Tools if p.tools => "the request offers tools".to_string(),
            When::Longer => {
                let n = p.text.chars().count();
                let limit = rule.chars.unwrap_or(usize::MAX);
                if n <= limit {
                    continue;
                }
                format!("the prompt has {n} characters, more than {limit}")
            }
            _ => continue,
        };
        return Some((rule.target.clone(), format!("rule {:?}: {why}", rule.when)));
    }
    None
}

fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The embedding classifier of one route: its examples' unit vectors, and
/// each target's centroid.
#[derive(Clone, Debug)]
pub struct Classifier {
    examples: Vec<(Vec<f32>, String)>,
    centroids: Vec<(Vec<f32>, String)>,
    k: usize,
}

impl Classifier {
    /// Embeds the examples of `r` (none: `Ok(None)`).
    pub fn train(r: &Route, e: &mut dyn Embed) -> Result<Option<Classifier>, String> {
        if r.examples.is_empty() {
            return Ok(None);
        }
        let mut examples = Vec::new();
        for ex in &r.examples {
            let v = e.embed(&ex.text)?;
            if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
                return Err(format!(
                    "the embedding of example {:?} is empty or not finite",
                    ex.text
                ));
            }
            if examples
                .first()
                .is_some_and(|(f, _): &(Vec<f32>, String)| f.len() != v.len())
            {
                return Err("the examples' embeddings differ in length".into());
            }
            examples.push((normalise(v), ex.target.clone()));
        }
        let mut centroids: Vec<(Vec<f32>, String)> = Vec::new();
        for (v, t) in &examples {
            match centroids.iter_mut().find(|(_, ct)| ct == t) {
                Some((c, _)) => c.iter_mut().zip(v).for_each(|(a, b)| *a += b),
                None => centroids.push((v.clone(), t.clone())),
            }
        }
        let centroids = centroids
            .into_iter()
            .map(|(c, t)| (normalise(c), t))
            .collect();
        Ok(Some(Classifier {
            examples,
            centroids,
            k: r.k.unwrap_or(0),
        }))
    }

    /// The target for a prompt embedded as `v`, and the reason.
    pub fn classify(&self, v: Vec<f32>) -> Result<(String, String), String> {
        let dim = self.examples[0].0.len();
        if v.len() != dim || v.iter().any(|x| !x.is_finite()) {
            return Err(format!(
                "the prompt's embedding has {} values (not finite or not {dim})",
                v.len()
            ));
        }
        let v = normalise(v);
        if self.k == 0 {
            let (sim, t) = self.centroids.iter().map(|(c, t)| (dot(c, &v), t)).fold(
                (f32::NEG_INFINITY, &self.centroids[0].1),
                |a, b| if b.0 > a.0 { b } else { a },
            );
            return Ok((
                t.clone(),
                format!("nearest centroid: {t} (cosine {sim:.3})"),
            ));
        }
        let mut sims: Vec<(f32, &String)> =
            self.examples.iter().map(|(e, t)| (dot(e, &v), t)).collect();
        sims.sort_by(|a, b| b.0.total_cmp(&a.0));
        let top = &sims[..self.k.min(sims.len())];
        // Votes weighted by similarity; ties go to the nearest.
        let mut votes: Vec<(&String, f32)> = Vec::new();
        for (s, t) in top {
            match votes.iter_mut().find(|(vt, _)| vt == t) {
                Some((_, w)) => *w += s,
                None => votes.push((t, *s)),
            }
        }
        let (t, w) = votes
            .iter()
            .fold(votes[0], |a, b| if b.1 > a.1 { *b } else { a });
        Ok((
            t.clone(),
            format!("{} nearest examples vote {t} (weight {w:.3})", top.len()),
        ))
    }
}
