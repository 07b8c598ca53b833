//! Log lines on stderr: text for a person or one JSON object a line
//! (`[server] log_format`), and in either no whole email address.

use std::io::Write;
use std::sync::LazyLock;

use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Starts logging. The level comes from `RUST_LOG` (default: warnings, and
/// posthorn's own information).
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,posthorn=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Masked)
        .with_target(false);
    let _ = match format {
        // Colour codes only where a person reads them, not in a log file.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    // A panic's message goes through the log too (masked, and one JSON object
    // in a JSON log), not raw to stderr; the caught ones are counted apart.
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        tracing::error!(panic = %info, backtrace = %backtrace, "a panic");
    }));
}

/// Writes each log line to stderr with every email address in it masked: a
/// relay's reply or a report may quote a reader's address anywhere, and a
/// log is kept and shipped where the subscriber table is not.
struct Masked;

impl<'a> MakeWriter<'a> for Masked {
    type Writer = MaskedLine;

    fn make_writer(&'a self) -> MaskedLine {
        MaskedLine(Vec::new())
    }
}

/// One event's text, masked and written when the event is done.
struct MaskedLine(Vec<u8>);

impl Write for MaskedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for MaskedLine {
    fn drop(&mut self) {
        let line = String::from_utf8_lossy(&self.0);
        // A log that cannot be written has nowhere to say so.
        let _ = std::io::stderr().write_all(mask_addresses(&line).as_bytes());
    }
}

/// `minji.kim@example.com` → `m***@example.com`: the domain stays (it says
/// which provider refused), the person does not.
pub fn mask_addresses(text: &str) -> std::borrow::Cow<'_, str> {
    static ADDRESS: LazyLock<regex::Regex> = LazyLock::new(|| {
        // A local part (letters and marks of any script, digits, the RFC 5322
        // atom characters but `=`, so that `recipient=` keeps its key; or a
        // quoted string), then a domain of labels or an address literal.
        regex::Regex::new(
            r#"("[^"\r\n]{0,64}"|[\p{L}\p{M}\p{N}!#$%&'*+/?^_`{|}~-][\p{L}\p{M}\p{N}.!#$%&'*+/?^_`{|}~-]*)@(\[[0-9A-Fa-f:.]+\]|[\p{L}\p{M}\p{N}-]+(?:\.[\p{L}\p{M}\p{N}-]+)+)"#,
        )
        .unwrap_or_else(|e| unreachable!("a fixed pattern: {e}"))
    });
    ADDRESS.replace_all(text, |c: &regex::Captures| {
        let local = &c[1];
        let first = local.chars().find(|ch| *ch != '"').unwrap_or('?');
        match local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
            // A quoted local part keeps its quotes, and a JSON line's escape
            // before the closing one, so the line stays valid.
            Some(inner) => {
                let escape = if inner.ends_with('\\') { "\\" } else { "" };
                format!("\"{first}***{escape}\"@{}", &c[2])
            }
            None => format!("{first}***@{}", &c[2]),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked_wherever_a_line_quotes_them() {
        assert_eq!(
            mask_addresses("550 5.1.1 <minji.kim+news@Example.COM>: Recipient address rejected"),
            "550 5.1.1 <m***@Example.COM>: Recipient address rejected"
        );
        assert_eq!(
            mask_addresses(r#"{"to":"김민지@예시.한국","n":1}"#),
            r#"{"to":"김***@예시.한국","n":1}"#
        );
        assert_eq!(
            mask_addresses("no address here, @home"),
            "no address here, @home"
        );
    }
}
