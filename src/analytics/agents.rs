//! What a request's `User-Agent` says about who asked: a person's browser, a
//! machine (crawler, link preview, security scanner, privacy proxy), or a feed
//! service that reports how many of its users follow the feed.
//!
//! Every test here is one pass of a regular expression (linear in the header),
//! and a header is cut at [`MAX_AGENT`] bytes first.

use std::net::IpAddr;
use std::sync::LazyLock;

use regex::Regex;

/// Longer `User-Agent` values are read this far: every marker looked for sits
/// near the start, and no browser sends more.
pub const MAX_AGENT: usize = 512;

/// Crawlers, link previews, feed fetchers, monitors, command-line clients and
/// headless browsers: none of them is a person reading.
static MACHINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)bot\b|bot/|crawl|spider|slurp|fetch|feed|rss|atom|subscriber|preview|embed|",
        r"facebookexternalhit|whatsapp|telegram|discord|slack|skype|curl|wget|python|java/|",
        r"go-http|okhttp|httpclient|libwww|axios|node-fetch|headless|phantom|lighthouse|",
        r"monitor|uptime|pingdom|scan|check|archive\.org|ia_archiver|",
        r"miniflux|freshrss|tt-rss|newsblur|inoreader|feedly|netnewswire|reeder",
    ))
    .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// Mail security gateways that open and follow everything in a message before
/// (or instead of) the reader.
static SCANNER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)barracuda|mimecast|proofpoint|symantec|messagelabs|trend ?micro|forcepoint|",
        r"zscaler|safelinks|sophos|fortinet|cisco|ironport|mcafee|trellix|kaspersky|",
        r"bitdefender|avast",
    ))
    .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// "… 131 subscribers …", "… 12 readers …": a feed service's own count.
static FOLLOWERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(\d{1,9})\s+(?:subscribers?|readers?)\b")
        .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
});

/// The services whose reports are kept. Anyone can send any `User-Agent`, so
/// an unknown name is not kept at all: it would be a row for anyone to add.
const SERVICES: [(&str, &str); 12] = [
    ("feedly", "Feedly"),
    ("inoreader", "Inoreader"),
    ("newsblur", "NewsBlur"),
    ("theoldreader", "The Old Reader"),
    ("feedbin", "Feedbin"),
    ("bazqux", "BazQux"),
    ("feedspot", "Feedspot"),
    ("netvibes", "Netvibes"),
    ("feedwrangler", "Feed Wrangler"),
    ("feedhq", "FeedHQ"),
    ("miniflux", "Miniflux"),
    ("tiny tiny rss", "Tiny Tiny RSS"),
];

fn head(agent: &str) -> &str {
    if agent.len() <= MAX_AGENT {
        return agent;
    }
    let mut end = MAX_AGENT;
    while !agent.is_char_boundary(end) {
        end -= 1;
    }
    &agent[..end]
}

/// A machine, not a person: an empty or missing agent counts as one.
pub fn is_machine(agent: Option<&str>) -> bool {
    match agent.map(|a| head(a).trim()) {
        None | Some("") => true,
        Some(a) => MACHINE.is_match(a) || SCANNER.is_match(a),
    }
}

/// Why an open is not counted as a read, or `None` when it may be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineOpen {
    /// Apple Mail Privacy Protection fetches every image of every message
    /// when it arrives, whether or not it is read.
    PrivacyProxy,
    /// A crawler, a security gateway or a program.
    Scanner,
    /// One of several emails opened from the same network within seconds: a
    /// mail gateway checking what arrives, not people reading.
    Burst,
}

/// Classifies one fetch of the open pixel from `peer`. `burst`: the same
/// network has just opened other emails (see [`MachineOpen::Burst`]).
pub fn machine_open(agent: Option<&str>, peer: IpAddr, burst: bool) -> Option<MachineOpen> {
    let agent = agent.map(|a| head(a).trim());
    // Apple's proxy sends a bare "Mozilla/5.0" and comes from Apple's own
    // networks: 17.0.0.0/8, 2620:149::/32 and 2a01:b740::/32.
    let apple = match peer {
        IpAddr::V4(v4) => v4.octets()[0] == 17,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.to_ipv4_mapped().is_some_and(|v4| v4.octets()[0] == 17)
                || (s[0], s[1]) == (0x2620, 0x0149)
                || (s[0], s[1]) == (0x2a01, 0xb740)
        }
    };
    if apple || agent == Some("Mozilla/5.0") {
        return Some(MachineOpen::PrivacyProxy);
    }
    // Webmail image proxies (Gmail's, Yahoo's) fetch when the reader opens the
    // message: those are reads, though the "bot"-like word in them is not.
    let proxy_for_a_reader = agent.is_some_and(|a| {
        let a = a.to_ascii_lowercase();
        a.contains("googleimageproxy") || a.contains("yahoomailproxy")
    });
    if !proxy_for_a_reader && is_machine(agent) {
        return Some(MachineOpen::Scanner);
    }
    burst.then_some(MachineOpen::Burst)
}

/// A feed service's report of its own readers, from its `User-Agent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followers {
    pub service: String,
    pub count: u32,
}

pub fn followers(agent: &str) -> Option<Followers> {
    let agent = head(agent);
    let count = FOLLOWERS.captures(agent)?.get(1)?.as_str().parse().ok()?;
    let lower = agent.to_ascii_lowercase();
    // One count per service and feed, the latest: a service that polls under
    // two ids would make rows anyone could multiply.
    let name = SERVICES
        .iter()
        .find(|(key, _)| lower.contains(key))
        .map(|(_, name)| name.to_string())?;
    Some(Followers {
        service: name,
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    const SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
        AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

    #[test]
    fn people_and_machines() {
        assert!(!is_machine(Some(FIREFOX)));
        assert!(!is_machine(Some(SAFARI)));
        for machine in [
            "Googlebot/2.1 (+http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "facebookexternalhit/1.1",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "curl/8.5.0",
            "python-requests/2.32",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0",
            "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 131 subscribers; )",
            "Miniflux/2.1.0",
            "",
        ] {
            assert!(is_machine(Some(machine)), "{machine}");
        }
        assert!(is_machine(None));
    }

    #[test]
    fn opens_by_machines_are_told_apart() {
        let home: IpAddr = "203.0.113.9".parse().unwrap();
        let apple: IpAddr = "17.58.1.2".parse().unwrap();
        let apple6: IpAddr = "2620:149:a:b::1".parse().unwrap();
        assert_eq!(
            machine_open(Some(SAFARI), apple6, false),
            Some(MachineOpen::PrivacyProxy)
        );
        assert_eq!(machine_open(Some(SAFARI), home, false), None);
        assert_eq!(
            machine_open(Some(SAFARI), apple, false),
            Some(MachineOpen::PrivacyProxy)
        );
        assert_eq!(
            machine_open(Some("Mozilla/5.0"), home, false),
            Some(MachineOpen::PrivacyProxy)
        );
        assert_eq!(
            machine_open(
                Some("Mozilla/5.0 (compatible; Barracuda Sentinel)"),
                home,
                false
            ),
            Some(MachineOpen::Scanner)
        );
        assert_eq!(
            machine_open(Some(FIREFOX), home, true),
            Some(MachineOpen::Burst)
        );
        let gmail = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
        assert_eq!(machine_open(Some(gmail), home, false), None);
        let outlook = "Mozilla/4.0 (compatible; ms-office; MSOffice 16)";
        assert_eq!(
            machine_open(Some(outlook), home, false),
            None,
            "Outlook reading"
        );
    }

    #[test]
    fn feed_services_report_their_readers() {
        let cases = [
            (
                "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 131 subscribers; )",
                "Feedly",
                131,
            ),
            (
                "Mozilla/5.0 (compatible; Inoreader/1.0; +https://www.inoreader.com; 45 subscribers)",
                "Inoreader",
                45,
            ),
            (
                "NewsBlur Feed Fetcher - 12 subscribers - https://www.newsblur.com/site/99/essays",
                "NewsBlur",
                12,
            ),
            ("Feedbin feed-id:1234 - 56 subscribers", "Feedbin", 56),
            (
                "Mozilla/5.0 (compatible; theoldreader.com; 4 subscribers; feed-id=abc123)",
                "The Old Reader",
                4,
            ),
        ];
        for (agent, service, count) in cases {
            assert_eq!(
                followers(agent),
                Some(Followers {
                    service: service.to_string(),
                    count
                }),
                "{agent}"
            );
        }
        assert_eq!(followers(FIREFOX), None);
        assert_eq!(
            followers("Acme Reader/2.0 (7 readers)"),
            None,
            "not a known service"
        );
        assert_eq!(followers("Feedly/1.0 (99999999999 subscribers)"), None);
    }

    #[test]
    fn a_huge_agent_is_read_only_at_its_head() {
        let agent = format!("{FIREFOX}{}", "é".repeat(100_000));
        assert!(!is_machine(Some(&agent)));
        assert_eq!(followers(&agent), None);
    }
}
