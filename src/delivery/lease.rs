//! Who holds a lease. A claim records its owner as `host:pid:start`, where `start`
//! is the process's start time; another process on the same host can then tell
//! at once whether the owner is still running (a reused pid has another start
//! time). For owners on other hosts only the lease's expiry tells.

use std::sync::OnceLock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(String);

impl Owner {
    /// This process.
    pub fn current() -> &'static Owner {
        static CURRENT: OnceLock<Owner> = OnceLock::new();
        CURRENT.get_or_init(|| {
            let pid = std::process::id();
            // Without /proc a random start keeps the id unique; liveness then
            // falls back to lease expiry.
            let start = start_time(pid).unwrap_or_else(|| format!("r{}", rand::random::<u32>()));
            Owner(format!("{}:{pid}:{start}", host()))
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn host() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
        .replace(':', "_")
}

/// Field 22 of /proc/PID/stat: the start time in clock ticks since boot.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19).map(str::to_string)
}

/// Whether the owner of a lease is dead: `Some(true)` only when it certainly is
/// (same host, and no process with that pid and start time), `None` when this
/// process cannot tell.
pub fn is_dead(owner: &str) -> Option<bool> {
    let mut parts = owner.rsplitn(3, ':');
    let (start, pid, host_part) = (parts.next()?, parts.next()?, parts.next()?);
    if host_part != host() || start.starts_with('r') {
        return None;
    }
    let pid: u32 = pid.parse().ok()?;
    Some(start_time(pid).as_deref() != Some(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_dead() {
        let me = Owner::current();
        assert_eq!(is_dead(me.as_str()), Some(false));
        let host = host();
        // pid 1 exists, but not with this start time.
        assert_eq!(is_dead(&format!("{host}:1:0")), Some(true));
        assert_eq!(is_dead(&format!("{host}:4194303:12345")), Some(true));
        assert_eq!(
            is_dead("elsewhere.example:1:1"),
            None,
            "another host: cannot tell"
        );
        assert_eq!(is_dead("garbage"), None);
    }
}
