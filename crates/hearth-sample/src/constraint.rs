//! Constrained decoding: a rule outside the sampler that says which tokens
//! may come next (a JSON grammar, a schema).

/// Restricts the next token. The sampler applies [`Constraint::mask`] before
/// its chain, so temperature, top-k and top-p only see allowed tokens.
pub trait Constraint: Send {
    /// Sets the logits of tokens that may not come next to −∞. End-of-
    /// generation tokens stay allowed only when the output so far is
    /// complete.
    fn mask(&mut self, logits: &mut [f32]);
    /// Advances past the chosen token.
    fn accept(&mut self, token: u32);
    /// True when nothing but an end-of-generation token may follow.
    fn is_finished(&self) -> bool;
}
