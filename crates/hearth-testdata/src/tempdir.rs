//! Scratch folders for tests that are removed when the test is done.

use std::path::{Path, PathBuf};

/// An empty folder `$TMPDIR/hearth-{tag}-{pid}` (emptied first if a
/// previous run left it), removed with everything in it when dropped, also
/// when the test fails.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("hearth-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("creating {}: {e}", d.display()));
        TempDir(d)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_goes_with_its_contents() {
        let p = {
            let d = TempDir::new("tempdir-self-test");
            std::fs::create_dir_all(d.join("a/b")).unwrap();
            std::fs::write(d.join("a/b/c.txt"), "x").unwrap();
            assert!(d.path().is_dir());
            d.path().to_path_buf()
        };
        assert!(!p.exists());
    }
}
