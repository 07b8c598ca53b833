use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Output;
use crate::error::Error;
use crate::render::DEFAULT_TEMPLATES;

/// The files of a new site. The config is the repository's own `config.toml`, so
/// what `init` writes is what the project runs and tests.
const SITE_FILES: &[(&str, &str)] = &[
    ("config.toml", include_str!("../../config.toml")),
    (
        "posts/slow-reading.md",
        include_str!("../../posts/slow-reading.md"),
    ),
    (
        "subscribers/sample.csv",
        include_str!("../../subscribers/sample.csv"),
    ),
    ("subscribers/.gitignore", "*.db\n*.db-*\n"),
];

pub fn run(dir: &Path, out: &Output) -> Result<ExitCode, Error> {
    let templates = DEFAULT_TEMPLATES
        .iter()
        .map(|(name, text)| (format!("templates/{name}"), *text));
    let files = SITE_FILES
        .iter()
        .map(|(name, text)| (name.to_string(), *text))
        .chain(templates);
    let mut written = Vec::new();
    let mut kept = Vec::new();
    for (name, text) in files {
        let path = dir.join(&name);
        // Never overwrite: `init` in an existing site only fills in what is missing.
        if path.exists() {
            kept.push(path);
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        written.push(path);
    }
    let show = |paths: &[PathBuf]| {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
    };
    out.print(
        &serde_json::json!({ "written": show(&written), "kept": show(&kept) }),
        || {
            let mut s = String::new();
            for p in &written {
                s.push_str(&format!("wrote {}\n", p.display()));
            }
            for p in &kept {
                s.push_str(&format!("kept  {} (already there)\n", p.display()));
            }
            s.push_str(&format!(
                "\nNext: edit {}, then\n  posthorn --config {} subscribers import {}\n  posthorn --config {} check",
                dir.join("config.toml").display(),
                dir.join("config.toml").display(),
                dir.join("subscribers/sample.csv").display(),
                dir.join("config.toml").display()
            ));
            s
        },
    );
    Ok(ExitCode::SUCCESS)
}
