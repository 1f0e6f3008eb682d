//! The client's address: the TCP peer, unless that peer is a trusted reverse
//! proxy, in which case the nearest untrusted address in `X-Forwarded-For`.
//! Throttling, "last used" and network limits depend on it, so untrusted
//! peers can never set it, and a trusted proxy's header that cannot be read
//! is refused rather than skipped: skipping would make the proxy the client.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

/// A name known at compile time: looked up by a string, it would be parsed
/// on every request.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// A trusted proxy sent an `X-Forwarded-For` that cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadForwardedFor;

/// The client's address of the request being served, if its connection's
/// is known.
pub fn of_request(
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Result<Option<IpAddr>, BadForwardedFor> {
    super::serve::peer()
        .map(|peer| {
            client_ip(
                peer.ip(),
                || headers.get_all(X_FORWARDED_FOR).iter(),
                trusted,
            )
        })
        .transpose()
}

/// `forwarded_for` is only read (and looked up) when `peer` is a trusted
/// proxy.
pub fn client_ip<'a, I>(
    peer: IpAddr,
    forwarded_for: impl FnOnce() -> I,
    trusted: &[IpNet],
) -> Result<IpAddr, BadForwardedFor>
where
    I: DoubleEndedIterator<Item = &'a HeaderValue>,
{
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return Ok(peer);
    }
    // Each proxy appends what it saw, so walk from the right: the first
    // address no trusted proxy vouches for is the client.
    let mut client = peer;
    for value in forwarded_for().rev() {
        let list = value.to_str().map_err(|_| BadForwardedFor)?;
        for entry in list.rsplit(',') {
            let ip = parse_entry(entry).ok_or(BadForwardedFor)?;
            client = ip;
            if !is_trusted(&ip) {
                return Ok(ip);
            }
        }
    }
    Ok(client)
}

/// `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443` or `203.0.113.7:80`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    entry
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|addr| canonical(addr.ip()))
}

/// IPv4 clients of a dual-stack listener arrive as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(peer: &str, headers: &[&str], trusted: &[&str]) -> String {
        let values: Vec<HeaderValue> = headers
            .iter()
            .map(|h| HeaderValue::from_str(h).unwrap())
            .collect();
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        match client_ip(peer.parse().unwrap(), || values.iter(), &trusted) {
            Ok(ip) => ip.to_string(),
            Err(BadForwardedFor) => "refused".to_owned(),
        }
    }

    #[test]
    fn untrusted_peers_cannot_claim_another_address() {
        assert_eq!(run("198.51.100.9", &["203.0.113.7"], &[]), "198.51.100.9");
        assert_eq!(
            run("198.51.100.9", &["203.0.113.7"], &["10.0.0.0/8"]),
            "198.51.100.9"
        );
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let proxies = ["10.0.0.0/8", "127.0.0.1/32"];
        assert_eq!(run("127.0.0.1", &["203.0.113.7"], &proxies), "203.0.113.7");
        // A client-supplied first entry is ignored: only the nearest untrusted hop counts.
        assert_eq!(
            run("127.0.0.1", &["1.2.3.4, 203.0.113.7, 10.1.1.1"], &proxies),
            "203.0.113.7"
        );
        assert_eq!(
            run("127.0.0.1", &["1.2.3.4", "203.0.113.7"], &proxies),
            "203.0.113.7"
        );
        assert_eq!(
            run("127.0.0.1", &["[2001:db8::1]:443"], &proxies),
            "2001:db8::1"
        );
        assert_eq!(
            run("127.0.0.1", &["203.0.113.7:8080"], &proxies),
            "203.0.113.7"
        );
        assert_eq!(
            run("::ffff:127.0.0.1", &["203.0.113.7"], &proxies),
            "203.0.113.7"
        );
    }

    #[test]
    fn garbage_from_a_trusted_proxy_is_refused_not_skipped() {
        let proxies = ["10.0.0.0/8", "127.0.0.1/32"];
        assert_eq!(run("127.0.0.1", &["not-an-ip"], &proxies), "refused");
        assert_eq!(run("127.0.0.1", &[""], &proxies), "refused");
        assert_eq!(
            run("127.0.0.1", &["203.0.113.7, unknown, 10.0.0.2"], &proxies),
            "refused"
        );
        // Left of the client, nothing is read: what it sent does not matter.
        assert_eq!(
            run("127.0.0.1", &["garbage, 203.0.113.7, 10.0.0.2"], &proxies),
            "203.0.113.7"
        );
        // From a peer that is no trusted proxy the header is never read.
        assert_eq!(
            run("198.51.100.9", &["not-an-ip"], &proxies),
            "198.51.100.9"
        );
        assert_eq!(run("127.0.0.1", &[], &proxies), "127.0.0.1");
        assert_eq!(
            run("127.0.0.1", &["10.0.0.1, 10.0.0.2"], &proxies),
            "10.0.0.1"
        );
    }
}
