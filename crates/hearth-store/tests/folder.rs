//! Folder models (a CTranslate2 Whisper folder) in the store: imported as a
//! read-only folder blob named by the hash of its files, found, verified
//! and removed like a file blob; folders with sub-folders or nothing in
//! them are refused and leave nothing behind.
#![allow(clippy::unwrap_used)]

use hearth_store::{GgufFacts, Store};

fn facts() -> GgufFacts {
    GgufFacts {
        architecture: Some("whisper".into()),
        parameters: None,
        file_type: Some("F16".into()),
    }
}

#[test]
fn a_folder_is_imported_verified_and_removed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny-ct2");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("model.bin"), vec![7u8; 5000]).unwrap();
    std::fs::write(model.join("config.json"), b"{}").unwrap();
    let store = Store::at(dir.path().join("store"));
    let m = store
        .import_with(&model, Some("whisper:tiny"), facts())
        .unwrap();
    assert_eq!(m.name, "whisper:tiny");
    assert_eq!(m.size, 5002);
    assert_eq!(m.architecture.as_deref(), Some("whisper"));
    let blob = store.model_path("whisper:tiny").unwrap();
    assert!(blob.is_dir());
    assert_eq!(std::fs::read(blob.join("config.json")).unwrap(), b"{}");
    assert!(std::fs::metadata(blob.join("model.bin"))
        .unwrap()
        .permissions()
        .readonly());
    assert!(store.verify("whisper:tiny").unwrap().ok());
    // The same files under another name share the blob; a changed file is
    // another model.
    let again = store.import_with(&model, Some("copy"), facts()).unwrap();
    assert_eq!(again.sha256, m.sha256);
    std::fs::write(model.join("config.json"), b"{\"x\":1}").unwrap();
    let other = store.import_with(&model, Some("other"), facts()).unwrap();
    assert_ne!(other.sha256, m.sha256);
    store.remove("whisper:tiny").unwrap();
    assert!(blob.is_dir(), "still used by `copy`");
    store.remove("copy").unwrap();
    assert!(!blob.exists());
    // No temporary left in blobs/.
    let left: Vec<_> = std::fs::read_dir(store.blobs_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn folders_with_folders_inside_or_nothing_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::at(dir.path().join("store"));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = store.import_with(&empty, Some("x"), facts()).unwrap_err();
    assert!(e.to_string().contains("1 to 64 files"), "{e}");
    let nested = dir.path().join("nested");
    std::fs::create_dir_all(nested.join("sub")).unwrap();
    std::fs::write(nested.join("model.bin"), b"x").unwrap();
    let e = store.import_with(&nested, Some("x"), facts()).unwrap_err();
    assert!(e.to_string().contains("only files"), "{e}");
    let missing = store
        .import_with(&dir.path().join("nope"), Some("x"), facts())
        .unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");
    assert!(store.list().unwrap().is_empty());
}
