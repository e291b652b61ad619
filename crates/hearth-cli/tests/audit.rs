//! `hearth audit verify`, `hearth audit tail` and `hearth route test`.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use hearth_route::audit::{self, AuditLog, Egress};

mod common;
use common::hearth;

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn audit_verify_and_tail() {
    let dir = std::env::temp_dir().join(format!("hearth-cli-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("audit.jsonl");
    let log = AuditLog::open(&path).expect("open");
    for i in 1..=3u64 {
        let mut redactions = BTreeMap::new();
        redactions.insert("email".to_string(), i);
        log.append(Egress {
            destination: "cloud https://api.example.test/v1".into(),
            model: format!("big-{i}"),
            prompt_tokens: 10 * i,
            completion_tokens: i,
            redactions,
            sent_sha256: audit::sha256_hex(&[i as u8]),
        })
        .expect("append");
    }
    let p = path.to_str().expect("utf-8 path");

    let o = hearth(&["audit", "verify", p]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("ok (3 entries)"), "{out}");

    let o = hearth(&["audit", "tail", p]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("#2 ") && out.contains("model=big-2") && out.contains("email=2"),
        "{out}"
    );
    assert!(
        out.contains("3 requests left the machine today (60 prompt tokens, 6 completion tokens)"),
        "{out}"
    );

    // Changing entry 2 fails, exit 1, naming it.
    let s = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, s.replacen("big-2", "big-9", 1)).expect("write");
    let o = hearth(&["audit", "verify", p]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("entry 2 (line 2) was changed"), "{err}");
    let o = hearth(&["audit", "tail", p]);
    assert_eq!(o.status.code(), Some(1));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn route_test_explains_without_sending() {
    let dir = std::env::temp_dir().join(format!("hearth-cli-route-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        "[upstreams.cloudy]\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"HEARTH_TEST_ROUTE_KEY\"\nmodels = [\"big\"]\npolicy = \"cloud\"\n\n[routes.auto]\npolicy = \"pin\"\ntargets = [\"cloudy:big\", \"local:smollm2\"]\n",
    )
    .expect("write");
    let c = cfg.to_str().expect("utf-8");
    let o = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["route", "test", "--config", c, "mail anna@example.com"])
        .env("HEARTH_TEST_ROUTE_KEY", "secret-value-never-printed")
        .output()
        .expect("run");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("route: upstream cloudy model big"), "{out}");
    assert!(
        out.contains("would send: mail [EMAIL_1]") && out.contains("email=1"),
        "{out}"
    );
    assert!(out.contains("from $HEARTH_TEST_ROUTE_KEY (set)"), "{out}");
    assert!(!out.contains("secret-value") && !err.contains("secret-value"));
    let o = hearth(&[
        "route",
        "test",
        "--config",
        c,
        "--private",
        "mail anna@example.com",
    ]);
    let (out, _) = text(&o);
    assert!(out.contains("route: local smollm2"), "{out}");
    // A bad config is an error naming the file, not a panic.
    std::fs::write(
        &cfg,
        "[routes.auto]\npolicy = \"pin\"\ntargets = [\"x:y\"]\n",
    )
    .expect("write");
    let o = hearth(&["route", "test", "--config", c, "hi"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("config.toml") && err.contains("no upstream called"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
