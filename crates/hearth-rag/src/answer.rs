//! What a model is given to answer from a knowledge base — the
//! instructions and a user turn holding numbered sources, then the
//! question — and what is said instead when retrieval abstains. `hearth
//! rag ask` and chat requests with a `knowledge` field both use it.

use crate::search::Hit;

/// The answer when nothing in the documents looks relevant (the model is not asked).
pub const NOT_FOUND: &str = "not in the documents";

/// The system instructions that go with [`prompt`].
pub const INSTRUCTIONS: &str = "Answer the question using only the numbered sources. \
Cite the sources you use as [1], [2]. If the sources do not answer the question, \
reply exactly: not in the documents.";

/// The user turn: the numbered passages, then the question.
pub fn prompt(question: &str, hits: &[Hit]) -> String {
    let mut s = String::from("Sources:\n");
    for (i, h) in hits.iter().enumerate() {
        let title = if h.heading.is_empty() {
            String::new()
        } else {
            format!(" ({})", h.heading)
        };
        s.push_str(&format!("[{}]{title} {}\n\n", i + 1, h.text.trim()));
    }
    s.push_str(&format!("Question: {question}"));
    s
}

/// One numbered source as a response lists it: `n` is the number the
/// answer cites it by.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Citation {
    pub n: usize,
    pub source: String,
    pub page: Option<u32>,
    pub span: (usize, usize),
    pub heading: String,
    pub text: String,
    pub score: f32,
}

/// The hits as the citations `[1]`, `[2]`… of [`prompt`].
pub fn citations(hits: &[Hit]) -> Vec<Citation> {
    hits.iter()
        .enumerate()
        .map(|(i, h)| Citation {
            n: i + 1,
            source: h.source.clone(),
            page: h.page,
            span: h.span,
            heading: h.heading.clone(),
            text: h.text.clone(),
            score: h.score,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(source: &str, heading: &str, text: &str) -> Hit {
        Hit {
            source: source.into(),
            page: Some(3),
            span: (10, 20),
            heading: heading.into(),
            text: text.into(),
            score: 0.5,
            id: 1,
        }
    }

    #[test]
    fn sources_are_numbered_in_the_prompt_and_the_citations() {
        let hits = [
            hit("a.pdf", "Intro", " first passage \n"),
            hit("b.md", "", "second"),
        ];
        let p = prompt("why?", &hits);
        assert_eq!(
            p,
            "Sources:\n[1] (Intro) first passage\n\n[2] second\n\nQuestion: why?"
        );
        let c = citations(&hits);
        assert_eq!((c[0].n, c[1].n), (1, 2));
        assert_eq!(c[1].source, "b.md");
        assert_eq!((c[0].page, c[0].span), (Some(3), (10, 20)));
    }
}
