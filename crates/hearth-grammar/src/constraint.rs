//! [`JsonConstraint`]: a [`Grammar`] applied to a tokenizer's vocabulary, one token at a time.

use std::collections::HashMap;
use std::sync::Arc;

use hearth_sample::Constraint;
use hearth_tokenizer::Tokenizer;

use crate::grammar::Grammar;
use crate::matcher::{advance, Arena, Entry, Frame, Stack, NIL};
use crate::vocab::VocabIndex;

/// The arena is compacted when it holds more entries than this after a token.
const ARENA_COMPACT: usize = 4096;

/// Constrained decoding of one sequence: only tokens that keep the output a prefix of a value
/// of the grammar are allowed, and end-of-generation tokens only once the value is complete.
///
/// ```no_run
/// # fn demo(tok: &hearth_tokenizer::Tokenizer) -> Result<(), hearth_grammar::GrammarError> {
/// use hearth_grammar::{Grammar, JsonConstraint, VocabIndex};
/// use hearth_sample::Constraint;
/// let grammar = Grammar::from_schema(&serde_json::json!({"type": "array", "items": {"type": "integer"}}))?;
/// let index = VocabIndex::shared(tok); // once per tokenizer
/// let mut c = JsonConstraint::with_index(&grammar, index);
/// let mut logits = vec![0.0f32; tok.n_vocab()];
/// c.mask(&mut logits); // only tokens starting with `[` (or whitespace) remain finite
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct JsonConstraint {
    grammar: Arc<Grammar>,
    index: Arc<VocabIndex>,
    arena: Arena,
    /// The live parses after the accepted tokens (empty after a rejected token).
    states: Vec<Stack>,
    levels: Vec<Vec<Stack>>,
    allowed: Vec<u64>,
    scratch: Vec<Stack>,
    /// An end-of-generation token was accepted.
    ended: bool,
}

impl JsonConstraint {
    /// A constraint for `grammar` over `tok`'s vocabulary; the vocabulary index comes from
    /// [`VocabIndex::shared`], so it is built once per tokenizer.
    pub fn new(grammar: &Grammar, tok: &Tokenizer) -> JsonConstraint {
        Self::with_index(grammar, VocabIndex::shared(tok))
    }

    /// A constraint for `grammar` over a prepared vocabulary index.
    pub fn with_index(grammar: &Grammar, index: Arc<VocabIndex>) -> JsonConstraint {
        Self::from_shared(Arc::new(grammar.clone()), index)
    }

    /// Like [`JsonConstraint::with_index`] with a grammar shared between constraints.
    pub fn from_shared(grammar: Arc<Grammar>, index: Arc<VocabIndex>) -> JsonConstraint {
        let levels = vec![Vec::new(); index.levels()];
        let words = index.n_vocab().div_ceil(64);
        let root = grammar.root;
        JsonConstraint {
            grammar,
            index,
            arena: Arena::new(),
            states: vec![Stack::start(root)],
            levels,
            allowed: vec![0; words],
            scratch: Vec::new(),
            ended: false,
        }
    }

    /// True when the output so far is a complete value (an EOG token may follow).
    pub fn is_complete(&self) -> bool {
        self.ended || self.states.iter().any(|s| s.can_end(&self.grammar))
    }

    /// True when a token the grammar does not allow was accepted (nothing can follow but EOG).
    pub fn is_failed(&self) -> bool {
        !self.ended && self.states.is_empty()
    }

    /// Fills the internal bit set with the allowed tokens, EOG ids included when allowed.
    fn compute_allowed(&mut self) {
        self.allowed.fill(0);
        let eog = if self.ended || self.states.is_empty() {
            true
        } else {
            let mark = self.arena.len();
            if let Some(first) = self.levels.first_mut() {
                first.clear();
                first.extend_from_slice(&self.states);
            }
            self.index.walk(
                &self.grammar,
                &mut self.arena,
                &mut self.levels,
                &mut self.allowed,
            );
            self.arena.truncate(mark);
            self.states.iter().any(|s| s.can_end(&self.grammar))
        };
        if eog {
            for &id in self.index.eog() {
                if let Some(w) = self.allowed.get_mut((id / 64) as usize) {
                    *w |= 1 << (id % 64);
                }
            }
        }
    }

    fn is_allowed(&self, id: usize) -> bool {
        self.allowed
            .get(id / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// The ids allowed next, EOG included when allowed (for tests and diagnostics).
    pub fn allowed_tokens(&mut self) -> Vec<u32> {
        self.compute_allowed();
        (0..self.index.n_vocab() as u32)
            .filter(|&id| self.is_allowed(id as usize))
            .collect()
    }

    /// Copies the chains the live states use into a fresh arena.
    fn compact(&mut self) {
        let mut fresh = Arena::new();
        let mut map: HashMap<u32, u32> = HashMap::new();
        let mut chain = Vec::new();
        for s in &mut self.states {
            chain.clear();
            let mut r = s.rest;
            while r != NIL && !map.contains_key(&r) {
                chain.push(r);
                r = self.arena[r as usize].rest;
            }
            for &old in chain.iter().rev() {
                let e: Entry = self.arena[old as usize];
                let rest = if e.rest == NIL { NIL } else { map[&e.rest] };
                fresh.push(Entry { rest, ..e });
                map.insert(old, (fresh.len() - 1) as u32);
            }
            if s.rest != NIL {
                s.rest = map[&s.rest];
            }
        }
        self.arena = fresh;
    }
}

impl Constraint for JsonConstraint {
    fn mask(&mut self, logits: &mut [f32]) {
        self.compute_allowed();
        for (id, l) in logits.iter_mut().enumerate() {
            if !self.is_allowed(id) {
                *l = f32::NEG_INFINITY;
            }
        }
    }

    fn accept(&mut self, token: u32) {
        if self.ended {
            return;
        }
        if self.index.is_eog(token) {
            self.ended = true;
            return;
        }
        if !self.index.is_eligible(token) {
            self.states.clear();
            return;
        }
        for &b in self.index.piece(token) {
            advance(
                &self.grammar,
                &mut self.arena,
                &self.states,
                b,
                &mut self.scratch,
            );
            std::mem::swap(&mut self.states, &mut self.scratch);
            if self.states.is_empty() {
                return;
            }
        }
        if self.arena.len() > ARENA_COMPACT {
            self.compact();
        }
    }

    fn is_finished(&self) -> bool {
        self.ended || self.states.iter().all(|s| s.top == Frame::Done)
    }
}
