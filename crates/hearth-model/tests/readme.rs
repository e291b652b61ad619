//! The README's table of architectures is the architecture table's
//! `markdown_table()`, between the two marker comments. With
//! `HEARTH_UPDATE_README=1` the test writes the table there instead of
//! failing.

use std::path::PathBuf;

const START: &str = "<!-- architectures: generated from hearth_model::ARCHS by crates/hearth-model/tests/readme.rs -->\n";
const END: &str = "<!-- architectures: end -->";

#[test]
fn readme_lists_the_architecture_table() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let (Some(a), Some(b)) = (text.find(START), text.find(END)) else {
        panic!("README.md lacks the architecture table markers");
    };
    let table = hearth_model::markdown_table();
    let current = &text[a + START.len()..b];
    if current == table {
        return;
    }
    if std::env::var("HEARTH_UPDATE_README").as_deref() == Ok("1") {
        let new = format!("{}{table}{}", &text[..a + START.len()], &text[b..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    panic!("README.md's architecture table is out of date (HEARTH_UPDATE_README=1 rewrites it); expected:\n{table}");
}
