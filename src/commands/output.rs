//! How results are printed: text for people, JSON for programs.

use serde::Serialize;

/// Where command results go: text for people, or JSON with `--json`.
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON when asked, otherwise the text from `human`.
    pub fn print<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(s) => line(&s),
                Err(e) => eprintln!("error: cannot write JSON: {e}"),
            }
        } else {
            let text = human();
            if !text.is_empty() {
                line(text.trim_end());
            }
        }
    }
}

/// Writes `text` and a newline on stdout (see [`write`]).
pub fn line(text: &str) {
    write(&format!("{text}\n"));
}

/// Writes `text` on stdout, as every command's output goes. A reader that
/// has gone (`| head`) is no error: the command's work is done, and the rest
/// is not wanted.
pub fn write(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the output: {e}");
        }
    }
}

/// Left-aligned columns, for the text output of list commands.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    use unicode_width::UnicodeWidthStr;
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.width());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            s.push_str(cell);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(widths[i] - cell.width() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}
