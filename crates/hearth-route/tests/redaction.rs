//! Redaction on the committed synthetic set (testdata/redaction, made by
//! scripts/gen-redaction-set.py): recall and precision measured on the
//! redacted text, i.e. what an upstream would receive; and the restorer
//! putting originals back into whole and streamed replies.

use std::collections::BTreeMap;

use hearth_route::redact::{Kind, Redactor, Session};

#[derive(serde::Deserialize)]
struct Row {
    lang: String,
    prompt: String,
    planted: Vec<Planted>,
}

#[derive(serde::Deserialize)]
struct Planted {
    kind: String,
    text: String,
}

fn rows() -> Vec<Row> {
    let path = hearth_testdata::testdata_dir().join("redaction/prompts.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a valid row"))
        .collect()
}

#[test]
fn synthetic_set_recall_and_precision() {
    let r = Redactor::new();
    let rows = rows();
    assert!(rows.len() >= 200);
    let (mut planted, mut caught, mut kind_right) = (0usize, 0usize, 0usize);
    let (mut placeholders, mut true_pos) = (0usize, 0usize);
    let mut per_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut false_pos = Vec::new();
    let mut langs = BTreeMap::new();
    for row in &rows {
        *langs.entry(row.lang.clone()).or_insert(0) += 1;
        let mut s = Session::new();
        let sent = s.redact(&r, &row.prompt);
        let findings = r.find(&row.prompt);
        // Recall: the planted value no longer appears in what is sent.
        for p in &row.planted {
            planted += 1;
            let k = per_kind.entry(p.kind.clone()).or_default();
            k.0 += 1;
            if sent.contains(&p.text) {
                misses.push(format!("{}: {:?} in {:?}", p.kind, p.text, sent));
            } else {
                caught += 1;
                k.1 += 1;
                let at = row
                    .prompt
                    .find(&p.text)
                    .expect("planted text in its prompt");
                if findings
                    .iter()
                    .any(|f| f.start < at + p.text.len() && f.end > at && f.kind.name() == p.kind)
                {
                    kind_right += 1;
                }
            }
        }
        // Precision: each placeholder covers (part of) something planted.
        for f in &findings {
            placeholders += 1;
            let hit = row.planted.iter().any(|p| {
                row.prompt
                    .match_indices(&p.text)
                    .any(|(at, _)| f.start < at + p.text.len() && f.end > at)
            });
            if hit {
                true_pos += 1;
            } else {
                false_pos.push(format!(
                    "{}: {:?} in {:?}",
                    f.kind.name(),
                    &row.prompt[f.start..f.end],
                    row.prompt
                ));
            }
        }
        // Whatever is sent, the restorer gives back the prompt.
        assert_eq!(s.restorer().restore(&sent), row.prompt);
    }
    let recall = caught as f64 / planted as f64;
    let precision = true_pos as f64 / placeholders as f64;
    println!("rows {} by language {langs:?}", rows.len());
    for (k, (n, c)) in &per_kind {
        println!("  {k}: {c}/{n} caught");
    }
    println!(
        "recall {:.2}% ({caught}/{planted}), precision {:.2}% ({true_pos}/{placeholders}), kind right {kind_right}/{caught}",
        100.0 * recall,
        100.0 * precision
    );
    for m in &misses {
        println!("  missed {m}");
    }
    for f in &false_pos {
        println!("  false positive {f}");
    }
    assert!(per_kind.len() == 7, "every kind is planted: {per_kind:?}");
    assert!(recall >= 0.98, "recall {recall}");
    assert!(precision >= 0.95, "precision {precision}");
}

#[test]
fn validators_reject_near_misses() {
    let r = Redactor::new();
    let kinds = |t: &str| r.find(t).iter().map(|f| f.kind).collect::<Vec<_>>();
    // Valid ones.
    assert_eq!(kinds("card 4111 1111 1111 1111"), vec![Kind::Card]);
    assert_eq!(
        kinds("IBAN DE89 3704 0044 0532 0130 00 please"),
        vec![Kind::Iban]
    );
    assert_eq!(kinds("SSN 123-45-6789"), vec![Kind::NationalId]);
    assert_eq!(kinds("NINO AB 12 34 56 C"), vec![Kind::NationalId]);
    assert_eq!(
        kinds("host 2001:db8::7 and fe80::1ff:fe23:4567:890a"),
        vec![Kind::Ip, Kind::Ip]
    );
    // One digit off: the check fails, nothing is taken.
    assert_eq!(kinds("card 4111 1111 1111 1112"), vec![]);
    assert_eq!(kinds("IBAN DE89 3704 0044 0532 0130 01 please"), vec![]);
    assert_eq!(kinds("SSN 666-45-6789 and 123-00-6789"), vec![]);
    assert_eq!(kinds("meet at 10:30:00 on 2025-01-02"), vec![]);
    assert_eq!(kinds("NINO GB 12 34 56 C"), vec![]);
    // The IBAN ends where its country's length says, not at the next word.
    let t = "pay to GB82 WEST 1234 5698 7654 32 ASAP";
    let f = r.find(t);
    assert_eq!(&t[f[0].start..f[0].end], "GB82 WEST 1234 5698 7654 32");
}

#[test]
fn user_patterns_and_errors() {
    let r = Redactor::new()
        .with_regex(r"PRJ-\d{4}")
        .expect("valid")
        .with_literal("Project Nightingale")
        .expect("valid");
    let mut s = Session::new();
    let sent = s.redact(
        &r,
        "Project Nightingale (PRJ-1234) mail bob@example.com, again bob@example.com",
    );
    assert_eq!(
        sent,
        "[CUSTOM_1] ([CUSTOM_2]) mail [EMAIL_1], again [EMAIL_1]"
    );
    assert_eq!(s.counts().get("email"), Some(&2));
    assert_eq!(s.counts().get("custom"), Some(&2));
    let e = Redactor::new()
        .with_regex("(unclosed")
        .err()
        .expect("an error");
    assert!(e.to_string().contains("(unclosed"), "{e}");
    assert!(Redactor::new().with_literal("").is_err());
}

#[test]
fn restorer_streams_placeholders_split_anywhere() {
    let r = Redactor::new();
    let mut s = Session::new();
    let prompt = "Write to anna@example.com and call +33 6 12 34 56 78 about [brackets].";
    let sent = s.redact(&r, prompt);
    assert_eq!(
        sent,
        "Write to [EMAIL_1] and call [PHONE_1] about [brackets]."
    );
    let reply = "Done: [EMAIL_1] was told; [PHONE_1] too. [EMAIL_ and [x] stay; [EMAIL_1]";
    let whole = s.restorer().restore(reply);
    let want = "Done: anna@example.com was told; +33 6 12 34 56 78 too. [EMAIL_ and [x] stay; anna@example.com";
    assert_eq!(whole, want);
    // Every split into two chunks, and one character at a time.
    let cut_points: Vec<usize> = reply.char_indices().map(|(i, _)| i).collect();
    for &i in &cut_points {
        let mut st = s.restorer();
        let mut out = st.push(&reply[..i]);
        out.push_str(&st.push(&reply[i..]));
        out.push_str(&st.finish());
        assert_eq!(out, want, "split at {i}");
    }
    let mut st = s.restorer();
    let mut out = String::new();
    for c in reply.chars() {
        let piece = st.push(&c.to_string());
        // Nothing of a placeholder leaks before it is complete.
        assert!(
            !piece.contains("[EMAIL_1") && !piece.contains("[PHONE"),
            "{piece}"
        );
        out.push_str(&piece);
    }
    out.push_str(&st.finish());
    assert_eq!(out, want);
}
