//! Stop strings over streamed text, and why a generation finished.

/// What [`StopMatcher::push`] decided for one piece of text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopStep {
    /// No stop string completed; print this text now (it may be empty while a possible stop
    /// string is held back).
    Continue(String),
    /// A stop string completed; print this text (what came before the stop) and finish. The stop
    /// string and everything after it are dropped.
    Stop(String),
}

/// Finds stop strings in generated text that arrives in pieces.
///
/// Text that could still turn into a stop string (a tail of the pending text that is a prefix
/// of some stop string) is held back until the next piece decides it; everything before it is
/// released at once. A stop string that spans several pieces is found. When several stop
/// strings complete, the text is cut at the earliest one. Empty stop strings are ignored.
///
/// Pieces are `&str`, so cuts always fall on character boundaries; splitting multi-byte
/// characters across tokens is the detokenizer's job.
///
/// After a stop, further pushes are ignored and return `Stop("")`; [`StopMatcher::flush`]
/// returns `""`.
#[derive(Clone, Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    /// Text received but not yet released: always a possible start of a stop string.
    pending: String,
    /// Index into `stops` of the stop string that ended the text.
    matched: Option<usize>,
}

impl StopMatcher {
    /// A matcher for these stop strings (empty ones are dropped, duplicates are harmless).
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            pending: String::new(),
            matched: None,
        }
    }

    /// True when there is nothing to look for.
    pub fn is_empty(&self) -> bool {
        self.stops.is_empty()
    }

    /// Feeds one piece of generated text.
    pub fn push(&mut self, text: &str) -> StopStep {
        if self.matched.is_some() {
            return StopStep::Stop(String::new());
        }
        if self.stops.is_empty() {
            return StopStep::Continue(text.to_owned());
        }
        self.pending.push_str(text);

        // Earliest completed stop string, if any.
        let mut hit: Option<(usize, usize)> = None; // (byte offset, stop index)
        for (i, stop) in self.stops.iter().enumerate() {
            if let Some(pos) = self.pending.find(stop.as_str()) {
                match hit {
                    Some((best, _)) if best <= pos => {}
                    _ => hit = Some((pos, i)),
                }
            }
        }
        if let Some((pos, i)) = hit {
            self.matched = Some(i);
            let mut emit = std::mem::take(&mut self.pending);
            emit.truncate(pos);
            return StopStep::Stop(emit);
        }

        // Release everything except the longest tail that is a proper prefix of a stop string.
        let hold = self.held_tail_len();
        let mut cut = self.pending.len() - hold;
        while !self.pending.is_char_boundary(cut) {
            cut -= 1; // unreachable for valid UTF-8 stops; kept so a cut can never split a char
        }
        let rest = self.pending.split_off(cut);
        StopStep::Continue(std::mem::replace(&mut self.pending, rest))
    }

    /// Releases the held-back text at the end of generation (no stop string completed).
    pub fn flush(&mut self) -> String {
        if self.matched.is_some() {
            return String::new();
        }
        std::mem::take(&mut self.pending)
    }

    /// The stop string that ended the text, once one has.
    pub fn matched(&self) -> Option<&str> {
        self.matched
            .and_then(|i| self.stops.get(i))
            .map(String::as_str)
    }

    /// Starts over for a new generation with the same stop strings.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.matched = None;
    }

    /// Length in bytes of the longest suffix of `pending` that is a proper prefix of a stop.
    fn held_tail_len(&self) -> usize {
        let p = self.pending.as_bytes();
        let mut hold = 0;
        for stop in &self.stops {
            let s = stop.as_bytes();
            let longest = p.len().min(s.len() - 1);
            if let Some(k) = (hold + 1..=longest).rev().find(|&k| p.ends_with(&s[..k])) {
                hold = k;
            }
        }
        hold
    }
}

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// The token limit or the context is full.
    Length,
}

impl FinishReason {
    /// The wire name used by the Ollama and OpenAI APIs: `"stop"` or `"length"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

impl std::fmt::Display for FinishReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_tail_picks_longest_prefix_over_all_stops() {
        let mut m = StopMatcher::new(vec!["abc".into(), "cd".into()]);
        m.pending.push_str("xxab");
        assert_eq!(m.held_tail_len(), 2);
        m.pending.clear();
        m.pending.push_str("xxabc");
        // "abc" itself would be a match; among proper prefixes "c" (of "cd") is the one.
        assert_eq!(m.held_tail_len(), 1);
    }

    #[test]
    fn finish_reason_names() {
        assert_eq!(FinishReason::Stop.as_str(), "stop");
        assert_eq!(FinishReason::Length.to_string(), "length");
    }
}
