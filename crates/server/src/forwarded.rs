//! The client's address behind a load balancer. Every request from a trusted proxy is
//! counted, rate-limited and audited as from the client its `X-Forwarded-For` names;
//! from anyone else the header is ignored (a client could write anything in it).

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The peer's address, unless the peer is a trusted proxy: then the right-most address in
/// `X-Forwarded-For` (all such headers, in order) that is not itself a trusted proxy, or
/// the left-most if all are. A header that cannot be read, or none, leaves the peer's
/// address: the proxy is then limited as one client, never a forged address believed.
pub(crate) fn client_addr(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> SocketAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(&ip.to_canonical()));
    if trusted.is_empty() || !is_trusted(&peer.ip()) {
        return peer;
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else { return peer };
        for hop in value.split(',') {
            let Some(ip) = hop_addr(hop.trim()) else { return peer };
            hops.push(ip);
        }
    }
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(hops.first())
        .map_or(peer, |ip| SocketAddr::new(*ip, peer.port()))
}

/// `203.0.113.7`, `2001:db8::1`, or with a port (`203.0.113.7:4711`, `[2001:db8::1]:4711`).
fn hop_addr(s: &str) -> Option<IpAddr> {
    let ip = s.parse::<IpAddr>().ok().or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(peer: &str, xff: &[&str], trusted: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for v in xff {
            headers.append("x-forwarded-for", v.parse().expect("header value"));
        }
        let trusted: Vec<IpNet> = trusted.iter().map(|n| n.parse().expect("net")).collect();
        client_addr(peer.parse().expect("peer"), &headers, &trusted).ip().to_string()
    }

    #[test]
    fn the_header_is_believed_only_from_a_trusted_proxy() {
        let lb = ["10.0.0.0/8"];
        assert_eq!(from("10.0.0.5:4000", &["203.0.113.7"], &lb), "203.0.113.7");
        assert_eq!(from("198.51.100.9:4000", &["203.0.113.7"], &lb), "198.51.100.9", "not a proxy");
        assert_eq!(from("10.0.0.5:4000", &["203.0.113.7"], &[]), "10.0.0.5", "no proxy trusted");
        assert_eq!(from("10.0.0.5:4000", &[], &lb), "10.0.0.5", "no header");
    }

    #[test]
    fn a_forged_left_part_is_skipped_and_trusted_hops_walked_past() {
        let lbs = ["10.0.0.0/8", "192.168.1.1/32"];
        // The client wrote 1.2.3.4 itself; the first proxy appended the client's address.
        assert_eq!(from("10.0.0.5:1", &["1.2.3.4, 203.0.113.7"], &lbs), "203.0.113.7");
        assert_eq!(from("10.0.0.5:1", &["1.2.3.4, 203.0.113.7, 192.168.1.1"], &lbs), "203.0.113.7");
        assert_eq!(from("10.0.0.5:1", &["1.2.3.4", "203.0.113.7"], &lbs), "203.0.113.7", "two headers");
        assert_eq!(from("10.0.0.5:1", &["10.1.1.1, 10.2.2.2"], &lbs), "10.1.1.1", "all trusted");
    }

    #[test]
    fn ports_ipv6_and_mapped_addresses_are_read_and_garbage_is_not() {
        let lb = ["10.0.0.0/8", "::1/128"];
        assert_eq!(from("[::ffff:10.0.0.5]:1", &["203.0.113.7:4711"], &lb), "203.0.113.7");
        assert_eq!(from("[::1]:1", &["[2001:db8::1]:4711"], &lb), "2001:db8::1");
        assert_eq!(from("[::1]:1", &["2001:db8::1"], &lb), "2001:db8::1");
        assert_eq!(from("10.0.0.5:1", &["unknown"], &lb), "10.0.0.5");
        assert_eq!(from("10.0.0.5:1", &["203.0.113.7, "], &lb), "10.0.0.5", "an empty hop");
    }
}
