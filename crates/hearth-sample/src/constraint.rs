//! [`Constraint`]: a rule over which tokens may come next (constrained decoding), and how the
//! [`Sampler`](crate::Sampler) applies one before its chain.

/// A rule that limits which token may come next, such as a JSON grammar.
///
/// The sampler calls [`Constraint::mask`] on a copy of the logits before its chain runs, so
/// penalties, top-k, top-p, min-p and temperature only ever see allowed tokens; the caller calls
/// [`Constraint::accept`] with the token that was chosen.
pub trait Constraint: Send {
    /// Sets the logits of tokens that may not come next to -inf (EOG tokens stay allowed only
    /// when the output so far is complete).
    fn mask(&mut self, logits: &mut [f32]);
    /// Advances past the chosen token.
    fn accept(&mut self, token: u32);
    /// True when nothing but an end-of-generation token may follow.
    fn is_finished(&self) -> bool;
}
