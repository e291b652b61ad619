//! A reranker's input: a (query, document) pair as one token sequence,
//! laid out the way llama.cpp's server lays it out for `/rerank`.

use crate::Tokenizer;

impl Tokenizer {
    /// The tokens of the pair `(query, document)` for a reranker.
    ///
    /// With the model's rerank template (`tokenizer.chat_template.rerank`)
    /// the template's `{query}` and `{document}` are replaced and the text
    /// is tokenized with special tokens parsed. Without one: BOS (where the
    /// vocabulary adds it), the query, EOS (where it adds EOS; SEP when it
    /// has no EOS), SEP (where it adds SEP), the document, and EOS again —
    /// `[CLS] q [SEP] d` for WordPiece, `<s> q </s> d </s>` for XLM-R's
    /// Unigram vocabulary. Neither text's own special-token spellings are
    /// parsed.
    pub fn encode_rerank_pair(&self, template: Option<&str>, query: &str, doc: &str) -> Vec<u32> {
        if let Some(t) = template {
            let text = t.replace("{query}", query).replace("{document}", doc);
            return self.encode(&text, false, true);
        }
        let ids = self.special_ids();
        let eos = ids.eos.or(ids.sep);
        let mut out = Vec::new();
        if self.add_bos() {
            out.extend(ids.bos);
        }
        out.extend(self.encode(query, false, false));
        if self.add_eos() {
            out.extend(eos);
        }
        if self.add_sep() {
            out.extend(ids.sep);
        }
        out.extend(self.encode(doc, false, false));
        if self.add_eos() {
            out.extend(eos);
        }
        out
    }
}
