//! Public-API tests of stop strings.

use hearth_sample::{FinishReason, StopMatcher, StopStep};

/// Feeds `pieces`, returns (everything emitted, whether a stop fired), flushing at the end when
/// no stop fired.
fn feed(stops: &[&str], pieces: &[&str]) -> (String, bool) {
    let mut m = StopMatcher::new(stops.iter().map(|s| s.to_string()).collect());
    let mut out = String::new();
    for p in pieces {
        match m.push(p) {
            StopStep::Continue(s) => out.push_str(&s),
            StopStep::Stop(s) => {
                out.push_str(&s);
                return (out, true);
            }
        }
    }
    out.push_str(&m.flush());
    (out, false)
}

#[test]
fn stop_inside_one_piece() {
    let mut m = StopMatcher::new(vec!["STOP".into()]);
    assert_eq!(m.push("foo STOP bar"), StopStep::Stop("foo ".into()));
    assert_eq!(m.matched(), Some("STOP"));
    assert_eq!(m.push("more"), StopStep::Stop(String::new()));
    assert_eq!(m.flush(), "");
}

#[test]
fn stop_across_piece_boundaries_is_held_back() {
    let mut m = StopMatcher::new(vec!["</end>".into()]);
    assert_eq!(m.push("Hello </"), StopStep::Continue("Hello ".into()));
    assert_eq!(m.push("en"), StopStep::Continue(String::new()));
    assert_eq!(m.push("d> tail"), StopStep::Stop(String::new()));
}

#[test]
fn held_text_is_released_when_it_diverges() {
    let mut m = StopMatcher::new(vec!["abc".into()]);
    assert_eq!(m.push("xab"), StopStep::Continue("x".into()));
    assert_eq!(m.push("x"), StopStep::Continue("abx".into()));
    assert_eq!(m.push("ab"), StopStep::Continue(String::new()));
    assert_eq!(m.flush(), "ab");
    assert_eq!(m.matched(), None);
}

#[test]
fn overlapping_prefixes() {
    // "aab" inside "aaab": the first 'a' is released once it can no longer start the stop.
    let mut m = StopMatcher::new(vec!["aab".into()]);
    assert_eq!(m.push("a"), StopStep::Continue(String::new()));
    assert_eq!(m.push("a"), StopStep::Continue(String::new()));
    assert_eq!(m.push("a"), StopStep::Continue("a".into()));
    assert_eq!(m.push("b"), StopStep::Stop(String::new()));
    // self-overlapping stop "abab" in "ababab"
    assert_eq!(feed(&["abab"], &["ab", "ab", "ab"]), (String::new(), true));
    assert_eq!(feed(&["abab"], &["xab", "a", "c"]), ("xabac".into(), false));
}

#[test]
fn multiple_stops_cut_at_the_earliest() {
    assert_eq!(
        feed(&["world", "lo"], &["hello world"]),
        ("hel".into(), true)
    );
    assert_eq!(
        feed(&["world", "lo"], &["hel", "l", "o world"]),
        ("hel".into(), true)
    );
    // the first stop to complete ends the text, even if a longer one started earlier
    assert_eq!(feed(&["abcd", "bc"], &["ab", "c", "d"]), ("a".into(), true));
    // one stop being a prefix of another
    assert_eq!(
        feed(&["User:", "User"], &["ok\nUs", "er: hi"]),
        ("ok\n".into(), true)
    );
}

#[test]
fn multibyte_utf8() {
    assert_eq!(
        feed(&["終わり"], &["これで終", "わ", "り！"]),
        ("これで".into(), true)
    );
    assert_eq!(
        feed(&["😀"], &["hi ", "😀", " there"]),
        ("hi ".into(), true)
    );
    // a shared first byte is not a shared prefix: "é" (C3 A9) vs "ã" (C3 A3)
    let mut m = StopMatcher::new(vec!["éa".into()]);
    assert_eq!(m.push("xã"), StopStep::Continue("xã".into()));
    assert_eq!(m.push("é"), StopStep::Continue(String::new()));
    assert_eq!(m.push("b"), StopStep::Continue("éb".into()));
    assert_eq!(feed(&["éa"], &["ñé", "aß"]), ("ñ".into(), true));
}

#[test]
fn no_stops_and_empty_stops_pass_through() {
    let mut m = StopMatcher::new(vec![]);
    assert!(m.is_empty());
    assert_eq!(m.push("abc"), StopStep::Continue("abc".into()));
    let mut m = StopMatcher::new(vec![String::new()]);
    assert!(m.is_empty());
    assert_eq!(m.push("abc"), StopStep::Continue("abc".into()));
    assert_eq!(m.flush(), "");
}

#[test]
fn reset_starts_over() {
    let mut m = StopMatcher::new(vec!["##".into()]);
    assert_eq!(m.push("a##"), StopStep::Stop("a".into()));
    m.reset();
    assert_eq!(m.push("b#"), StopStep::Continue("b".into()));
    assert_eq!(m.flush(), "#");
}

/// Every way of cutting a text into three pieces gives the same output as one piece, and that
/// output is the text up to the earliest stop.
#[test]
fn output_does_not_depend_on_piece_boundaries() {
    let stops = ["<|im_end|>", "\n\nUser", "é!"];
    let texts = [
        "Sure, café!<|im_end|> junk",
        "line\n\nUse it\n\nUser: hi",
        "no stop here <|im_en",
        "<|im_end|>",
    ];
    for text in texts {
        let want_cut = stops.iter().filter_map(|s| text.find(s)).min();
        let want = (
            text[..want_cut.unwrap_or(text.len())].to_string(),
            want_cut.is_some(),
        );
        let bounds: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        for &i in &bounds {
            for &j in bounds.iter().filter(|&&j| j >= i) {
                let pieces = [&text[..i], &text[i..j], &text[j..]];
                assert_eq!(feed(&stops, &pieces), want, "{text:?} cut at {i},{j}");
            }
        }
    }
}

#[test]
fn finish_reason_wire_names() {
    assert_eq!(FinishReason::Stop.as_str(), "stop");
    assert_eq!(FinishReason::Length.as_str(), "length");
}
