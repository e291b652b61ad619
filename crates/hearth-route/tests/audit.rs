//! The egress audit log: a clean log verifies; every single edit, deletion
//! or reordering of a generated log fails verification naming the entry.

// `is_multiple_of` is newer than the workspace's rust-version.
#![allow(unknown_lints, clippy::manual_is_multiple_of)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hearth_route::audit::{self, AuditLog, Egress};

const N: u64 = 6;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hearth-audit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn egress(i: u64) -> Egress {
    let mut redactions = BTreeMap::new();
    redactions.insert("email".to_string(), i);
    if i % 2 == 0 {
        redactions.insert("iban".to_string(), 1);
    }
    Egress {
        destination: format!("cloud-{} https://api.example.test/v1", i % 3),
        model: format!("big-model-{i}"),
        prompt_tokens: 100 + i,
        completion_tokens: 20 * i,
        redactions,
        sent_sha256: audit::sha256_hex(format!("request body {i}").as_bytes()),
    }
}

/// A log of N entries in `dir`; returns its path.
fn generate(dir: &Path) -> PathBuf {
    let path = dir.join("audit.jsonl");
    let log = AuditLog::open(&path).expect("open");
    let t0 = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    for i in 1..=N {
        log.append_at(egress(i), t0 + Duration::from_secs(i * 60))
            .expect("append");
    }
    path
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(path: &Path, l: &[String]) {
    let mut s = l.join("\n");
    if !l.is_empty() {
        s.push('\n');
    }
    std::fs::write(path, s).expect("write");
}

fn must_fail_naming(path: &Path, entry: u64, what: &str) {
    match audit::verify(path) {
        Ok(_) => panic!("{what}: the log still verifies"),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("entry {entry}"))
                    || msg.contains(&format!("entries {entry}..")),
                "{what}: the error does not name entry {entry}: {msg}"
            );
        }
    }
}

#[test]
fn clean_log_verifies_and_reopens() {
    let dir = tmpdir("clean");
    let path = generate(&dir);
    let entries = audit::verify(&path).expect("clean log verifies");
    assert_eq!(entries.len() as u64, N);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
        assert_eq!(e.egress, egress(i as u64 + 1));
    }
    assert_eq!(entries[0].prev, audit::GENESIS);
    // Reopening continues the chain.
    let log = AuditLog::open(&path).expect("reopen");
    let e = log.append(egress(99)).expect("append");
    assert_eq!(e.seq, N + 1);
    assert_eq!(e.prev, entries[N as usize - 1].hash);
    assert_eq!(audit::verify(&path).expect("verifies").len() as u64, N + 1);
    // The log holds no content, only its hash.
    assert!(!std::fs::read_to_string(&path)
        .expect("read")
        .contains("request body"));
    // Today's entries: the one appended now, not the fixed-time ones.
    let all = audit::verify(&path).expect("verifies");
    let today = audit::on_day(&all, SystemTime::now());
    assert_eq!(today.len(), 1);
    assert_eq!(today[0].seq, N + 1);
    std::fs::remove_dir_all(&dir).ok();
}

/// Every field of every entry changed in place (hash left as it was), and
/// the same with the entry's hash recomputed by someone who knows the scheme.
#[test]
fn every_edit_is_named() {
    let dir = tmpdir("edit");
    let path = generate(&dir);
    let orig = lines(&path);
    let fields = [
        ("seq", serde_json::json!(42)),
        ("time", serde_json::json!("2026-01-01T00:00:00.000000000Z")),
        ("prev", serde_json::json!(audit::sha256_hex(b"x"))),
        ("hash", serde_json::json!(audit::sha256_hex(b"y"))),
    ];
    let egress_fields = [
        ("destination", serde_json::json!("somewhere-else")),
        ("model", serde_json::json!("other")),
        ("prompt_tokens", serde_json::json!(1)),
        ("completion_tokens", serde_json::json!(0)),
        ("redactions", serde_json::json!({})),
        ("sent_sha256", serde_json::json!(audit::sha256_hex(b"z"))),
    ];
    let mut checked = 0;
    for k in 0..N as usize {
        let entry = k as u64 + 1;
        let base: serde_json::Value = serde_json::from_str(&orig[k]).expect("json");
        let mut edits: Vec<serde_json::Value> = Vec::new();
        for (f, v) in &fields {
            let mut e = base.clone();
            e[*f] = v.clone();
            edits.push(e);
        }
        for (f, v) in &egress_fields {
            let mut e = base.clone();
            e["egress"][*f] = v.clone();
            edits.push(e);
        }
        for e in edits {
            let mut l = orig.clone();
            l[k] = serde_json::to_string(&e).expect("json");
            write_lines(&path, &l);
            must_fail_naming(&path, entry, &format!("edit of entry {entry}: {}", l[k]));
            checked += 1;
        }
        // A one-character edit that breaks the JSON.
        let mut l = orig.clone();
        l[k].pop();
        write_lines(&path, &l);
        must_fail_naming(&path, entry, &format!("truncated entry {entry}"));
        // An edit with the hash recomputed: the next entry (or the head) no longer matches.
        let mut l = orig.clone();
        let mut e: audit::Entry = serde_json::from_str(&orig[k]).expect("entry");
        e.egress.model = "edited".into();
        let body =
            serde_json::json!({"seq": e.seq, "time": e.time, "egress": e.egress, "prev": e.prev});
        e.hash = audit::sha256_hex(&serde_json::to_vec(&body).expect("json"));
        l[k] = serde_json::to_string(&e).expect("json");
        write_lines(&path, &l);
        must_fail_naming(&path, entry, &format!("rehashed edit of entry {entry}"));
        checked += 2;
    }
    assert_eq!(checked, N as usize * 12);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_deletion_is_named() {
    let dir = tmpdir("delete");
    let path = generate(&dir);
    let orig = lines(&path);
    for k in 0..N as usize {
        let mut l = orig.clone();
        l.remove(k);
        write_lines(&path, &l);
        must_fail_naming(&path, k as u64 + 1, &format!("deletion of entry {}", k + 1));
    }
    // The whole log removed, the head left.
    write_lines(&path, &[]);
    must_fail_naming(&path, 1, "all entries removed");
    // The head removed: the end can no longer be checked.
    write_lines(&path, &orig);
    std::fs::remove_file(audit::head_path(&path)).expect("rm head");
    assert!(audit::verify(&path).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_reordering_is_named() {
    let dir = tmpdir("reorder");
    let path = generate(&dir);
    let orig = lines(&path);
    for a in 0..N as usize {
        for b in a + 1..N as usize {
            let mut l = orig.clone();
            l.swap(a, b);
            write_lines(&path, &l);
            must_fail_naming(
                &path,
                a as u64 + 1,
                &format!("swap of entries {} and {}", a + 1, b + 1),
            );
        }
    }
    // Moving one entry to the end.
    for k in 0..N as usize - 1 {
        let mut l = orig.clone();
        let e = l.remove(k);
        l.push(e);
        write_lines(&path, &l);
        must_fail_naming(
            &path,
            k as u64 + 1,
            &format!("entry {} moved to the end", k + 1),
        );
    }
    // A duplicated entry (inserted).
    let mut l = orig.clone();
    l.insert(2, orig[1].clone());
    write_lines(&path, &l);
    must_fail_naming(&path, 2, "entry 2 duplicated");
    // Opening a broken log for appending is refused.
    assert!(AuditLog::open(&path).is_err());
    std::fs::remove_dir_all(&dir).ok();
}
