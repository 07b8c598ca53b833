//! Where a feed's redirect may send posthorn: never to the author's own machine
//! or network.

use std::net::{IpAddr, SocketAddr};

use url::{Host, Url};

/// Whether a redirect may take the fetch from `start` to `to`, and the addresses
/// to connect to if `to` names its host. A feed cannot send posthorn to the
/// author's own machine or network: a redirect may stay on the origin of the
/// URL the author chose (on the server that answered it, `first_server`), or go
/// to an http(s) host whose every address is public. Checked before anything
/// is sent there.
pub(super) async fn redirect_addresses(
    start: &Url,
    first_server: Option<SocketAddr>,
    to: &Url,
) -> Result<Option<(String, Vec<SocketAddr>)>, String> {
    if !matches!(to.scheme(), "http" | "https") {
        return Err(format!("refused a redirect to {to}: not http or https"));
    }
    if to.origin() == start.origin() {
        return Ok(match (to.host(), first_server) {
            (Some(Host::Domain(name)), Some(server)) => Some((name.to_string(), vec![server])),
            _ => None,
        });
    }
    let refuse = |ip: IpAddr| match non_public(ip) {
        Some(kind) => Err(format!(
            "refused a redirect to {to}: {ip} is a {kind} address"
        )),
        None => Ok(()),
    };
    match to.host() {
        Some(Host::Ipv4(ip)) => refuse(ip.into()).map(|()| None),
        Some(Host::Ipv6(ip)) => refuse(ip.into()).map(|()| None),
        Some(Host::Domain(name)) => {
            let port = to.port_or_known_default().unwrap_or(80);
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| format!("redirected to {to}: {name} does not resolve ({e})"))?
                .collect();
            if addresses.is_empty() {
                return Err(format!("redirected to {to}: {name} has no address"));
            }
            for address in &addresses {
                refuse(address.ip())?;
            }
            Ok(Some((name.to_string(), addresses)))
        }
        None => Err(format!("refused a redirect to {to}: no host")),
    }
}

/// What kind of address `ip` is if it is not on the public internet: loopback,
/// private (RFC 1918, unique local), link-local, unspecified, or shared (CGNAT).
/// IPv6 forms that carry an IPv4 address are judged by that address.
fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, _, _] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if a == 0 {
                Some("unspecified")
            } else if a == 100 && b & 0xc0 == 64 {
                Some("shared (CGNAT)")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if let Some(v4) = v6.to_ipv4() {
                // ::a.b.c.d and ::ffff:a.b.c.d
                non_public(v4.into())
            } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                // NAT64: the last 32 bits are the IPv4 address reached.
                let [.., hi, lo] = s;
                non_public(std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)).into())
            } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
                Some("private")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else {
                None
            }
        }
    }
}
