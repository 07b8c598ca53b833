//! Substack's export (Settings → Export): a ZIP, or the folder it unpacks to,
//! with `posts.csv` (`post_id,post_date,is_published,…,type,audience,title,
//! subtitle,…`) and one `posts/POST_ID.html` per post, where `POST_ID` is
//! `123456.the-slug`.

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{slug_of, untitled_or, Archive, ArchivedPost, Skipped};
use crate::domain::one_line;

/// The file that lists the posts.
pub const SUBSTACK_INDEX: &str = "posts.csv";

/// Largest post body read from an export.
const MAX_POST_BYTES: u64 = 20 * 1024 * 1024;

/// The files of an export: unpacked, or still in its ZIP.
pub enum SubstackFiles {
    Folder(PathBuf),
    Zip {
        archive: Box<zip::ZipArchive<std::fs::File>>,
        /// The folder inside the ZIP that holds `posts.csv` (`""` or `name/`).
        root: String,
    },
}

impl SubstackFiles {
    /// A ZIP file: it must be whole, and hold a `posts.csv`.
    pub fn zip(file: std::fs::File) -> Result<SubstackFiles, String> {
        let archive = zip::ZipArchive::new(file)
            .map_err(|e| format!("not a whole ZIP file ({e}); was it cut short?"))?;
        let root = archive
            .file_names()
            .filter_map(|n| n.strip_suffix(SUBSTACK_INDEX))
            .filter(|root| root.is_empty() || root.ends_with('/'))
            .min_by_key(|root| root.len())
            .map(str::to_string)
            .ok_or_else(|| format!("the ZIP holds no `{SUBSTACK_INDEX}`: not a Substack export"))?;
        Ok(SubstackFiles::Zip {
            archive: Box::new(archive),
            root,
        })
    }

    /// A file of the export as text, `None` if it is not there. A file over
    /// [`MAX_POST_BYTES`] or not UTF-8 is an error that names it.
    fn text(&mut self, name: &str) -> Result<Option<String>, String> {
        let mut bytes = Vec::new();
        match self {
            SubstackFiles::Folder(dir) => {
                let path = dir.join(Path::new(name));
                let file = match std::fs::File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                };
                file.take(MAX_POST_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            SubstackFiles::Zip { archive, root } => {
                let full = format!("{root}{name}");
                let entry = match archive.by_name(&full) {
                    Ok(entry) => entry,
                    Err(zip::result::ZipError::FileNotFound) => return Ok(None),
                    Err(e) => return Err(format!("{full}: {e}")),
                };
                entry
                    .take(MAX_POST_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| format!("{full}: {e}"))?;
            }
        }
        if bytes.len() as u64 > MAX_POST_BYTES {
            return Err(format!("{name} is larger than 20 MB"));
        }
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| format!("{name} is not UTF-8 text"))
    }
}

pub fn read(files: &mut SubstackFiles) -> Result<Archive, String> {
    let index = files
        .text(SUBSTACK_INDEX)?
        .ok_or_else(|| format!("no `{SUBSTACK_INDEX}`: not a Substack export"))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(index.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| format!("{SUBSTACK_INDEX}: the header row: {e}"))?
        .clone();
    let at = |name: &str| {
        header
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
    };
    let (Some(id_at), Some(date_at)) = (at("post_id"), at("post_date")) else {
        return Err(format!(
            "{SUBSTACK_INDEX} has no `post_id` and `post_date` columns: not a Substack export"
        ));
    };
    let (title_at, published_at, audience_at) = (at("title"), at("is_published"), at("audience"));
    let mut archive = Archive::default();
    for (i, record) in reader.records().enumerate() {
        let entry = format!("{SUBSTACK_INDEX} row {}", i + 2);
        let skip = |reason: String| Skipped {
            entry: entry.clone(),
            reason,
        };
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                archive.skipped.push(skip(e.to_string()));
                continue;
            }
        };
        let cell = |at: Option<usize>| at.and_then(|i| record.get(i)).unwrap_or("").trim();
        let id = cell(Some(id_at));
        let title = one_line(cell(title_at));
        // A post's file is named by its id; an id is digits, a dot and a slug.
        if id.is_empty() || id.contains(['/', '\\']) || id.starts_with('.') {
            archive
                .skipped
                .push(skip(format!("post_id `{}`", one_line(id))));
            continue;
        }
        let file = format!("posts/{id}.html");
        let Some(html) = files.text(&file)? else {
            archive.skipped.push(skip(format!(
                "no {file} (a thread or a podcast without text)"
            )));
            continue;
        };
        let Some(date) = DateTime::parse_from_rfc3339(cell(Some(date_at)))
            .ok()
            .map(|d| d.with_timezone(&Utc))
        else {
            archive.skipped.push(skip(format!(
                "post_date `{}`",
                one_line(cell(Some(date_at)))
            )));
            continue;
        };
        let given = id.split_once('.').map_or(id, |(_, slug)| slug);
        let Some(slug) = slug_of(given, &title, "post") else {
            archive.skipped.push(skip("no slug".into()));
            continue;
        };
        let held_back = match cell(audience_at) {
            "" | "everyone" => None,
            audience => Some(format!("for `{}` readers on Substack", one_line(audience))),
        };
        archive.posts.push(ArchivedPost {
            entry: file,
            slug,
            title: untitled_or(title),
            date,
            tags: Vec::new(),
            draft: cell(published_at).eq_ignore_ascii_case("false") || held_back.is_some(),
            held_back,
            html,
            base: None,
        });
    }
    Ok(archive)
}
