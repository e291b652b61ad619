//! hearth-ui: the chat page `hearth serve` shows a browser at `/`.
//!
//! The page (HTML, CSS and plain JavaScript, no build step) lives in
//! `web/`; `build.rs` gzips every file into the binary. The server looks
//! files up with [`asset`] and sends the gzip bytes as they are (every
//! browser accepts `Content-Encoding: gzip`), or [`Asset::decompressed`]
//! to a client that does not.

/// One embedded file of the page.
#[derive(Debug)]
pub struct Asset {
    /// File name under `web/`, e.g. `app.js`.
    pub path: &'static str,
    pub content_type: &'static str,
    /// The file, gzip-compressed.
    pub gzip: &'static [u8],
    /// A strong ETag (quoted) derived from the file's bytes.
    pub etag: &'static str,
    /// Length of the uncompressed file.
    pub raw_len: usize,
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The page's entry document.
pub const INDEX: &str = "index.html";

/// The embedded file named `path` (`index.html`, `app.js`, ...), if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Every embedded file.
pub fn assets() -> &'static [Asset] {
    ASSETS
}

impl Asset {
    /// The file's plain bytes, for a client that did not send
    /// `Accept-Encoding: gzip`.
    pub fn decompressed(&self) -> Vec<u8> {
        gunzip(self.gzip)
    }
}

/// Reads back what build.rs wrote. build.rs made the bytes, so a failure
/// here would be a build bug; it yields what was read rather than a panic.
fn gunzip(gz: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    let _ = flate2::read::GzDecoder::new(gz).read_to_end(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_weighs_at_most_150_kb_compressed() {
        let total: usize = assets().iter().map(|a| a.gzip.len()).sum();
        let raw: usize = assets().iter().map(|a| a.raw_len).sum();
        println!(
            "page: {total} bytes gzip ({raw} bytes plain) in {} files",
            assets().len()
        );
        assert!(total <= 150 * 1024, "{total} bytes");
        assert!(asset(INDEX).is_some());
    }

    #[test]
    fn every_asset_decompresses_to_its_length_with_a_distinct_etag() {
        for a in assets() {
            assert_eq!(a.decompressed().len(), a.raw_len, "{}", a.path);
            assert_eq!(assets().iter().filter(|b| b.etag == a.etag).count(), 1);
        }
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset("").is_none());
    }
}
