//! Where a pull may go when a server pulls for a client: `https://` URLs
//! whose host resolves only to public addresses. A web page or a client
//! must not be able to aim the server at loopback, private or link-local
//! services (the host's own admin pages, a cloud metadata endpoint).
//!
//! The check runs twice: once up front, for a clear error, and again as
//! the HTTP client's resolver, so that a redirect or a DNS answer that
//! changed in between cannot reach an internal address either.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use crate::error::{Result, StoreError};

/// True for addresses a server must not fetch from on a client's behalf:
/// unspecified, loopback, private (RFC 1918, IPv6 unique-local), link-local,
/// shared (100.64/10), benchmarking, documentation, multicast, broadcast,
/// and IPv4-mapped forms of those.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0xdb8)
                || (s[0] == 0x64 && s[1] == 0xff9b)
        }
    }
}

/// The `host:port` of an `http(s)://` URL (port defaulted by scheme).
fn netloc(url: &str) -> Option<(bool, String)> {
    let (https, rest) = match url.split_once("://") {
        Some((s, r)) if s.eq_ignore_ascii_case("https") => (true, r),
        Some((s, r)) if s.eq_ignore_ascii_case("http") => (false, r),
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    if host_port.is_empty() {
        return None;
    }
    let has_port = match host_port.rsplit_once(':') {
        Some((h, p)) => !h.ends_with(':') && !p.contains(']') && !p.is_empty(),
        None => false,
    };
    let port = if https { 443 } else { 80 };
    Some((
        https,
        if has_port {
            host_port.to_string()
        } else {
            format!("{host_port}:{port}")
        },
    ))
}

fn refused(url: &str, why: String) -> StoreError {
    StoreError::NotPublic {
        url: url.to_string(),
        why,
    }
}

/// Refuses a URL a server would fetch for a client unless it is
/// `https://` and its host resolves (now) only to public addresses.
pub fn check_public_url(url: &str) -> Result<()> {
    let Some((https, hp)) = netloc(url) else {
        return Err(refused(url, "not an http(s) URL".into()));
    };
    if !https {
        return Err(refused(url, "plain http:// is not fetched".into()));
    }
    public_addrs(&hp).map_err(|e| refused(url, e.to_string()))?;
    Ok(())
}

/// The addresses of `host:port`, or an error when any of them is internal.
fn public_addrs(netloc: &str) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::other(format!("{netloc} resolves to no address")));
    }
    if let Some(bad) = addrs.iter().find(|a| is_internal(a.ip())) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{netloc} resolves to {}, a loopback, private or link-local address",
                bad.ip()
            ),
        ));
    }
    Ok(addrs)
}

/// The HTTP client's resolver for server-side URL pulls: every connection
/// (redirects included) goes to public addresses only.
pub(crate) struct PublicOnly;

impl ureq::Resolver for PublicOnly {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        public_addrs(netloc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(
                is_internal(a.parse().unwrap_or_else(|_| unreachable!())),
                "{a}"
            );
        }
        for a in ["1.1.1.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(
                !is_internal(a.parse().unwrap_or_else(|_| unreachable!())),
                "{a}"
            );
        }
    }

    #[test]
    fn the_client_resolver_refuses_internal_addresses() {
        use ureq::Resolver;
        for netloc in [
            "127.0.0.1:443",
            "[::1]:443",
            "10.0.0.1:443",
            "localhost:443",
        ] {
            let e = PublicOnly.resolve(netloc).expect_err(netloc);
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{netloc}: {e}");
        }
        let ok = PublicOnly.resolve("1.1.1.1:443").unwrap_or_default();
        assert_eq!(
            ok,
            vec!["1.1.1.1:443".parse().unwrap_or_else(|_| unreachable!())]
        );
    }

    #[test]
    fn urls() {
        for u in [
            "http://example.org/m.gguf",
            "https://127.0.0.1/m.gguf",
            "https://[::1]:8443/m.gguf",
            "https://user@10.0.0.1/m.gguf",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost/m.gguf",
            "ftp://example.org/m.gguf",
            "https:///m.gguf",
        ] {
            let e = check_public_url(u).expect_err(u);
            assert!(matches!(e, StoreError::NotPublic { .. }), "{u}: {e}");
        }
        assert_eq!(
            netloc("https://h.example/x?y").map(|n| n.1),
            Some("h.example:443".into())
        );
        assert_eq!(
            netloc("http://[::1]:81/x").map(|n| n.1),
            Some("[::1]:81".into())
        );
        assert_eq!(
            netloc("https://[::1]/x").map(|n| n.1),
            Some("[::1]:443".into())
        );
    }
}
