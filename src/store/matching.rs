//! Which stored post a file is. A post's identity is fixed when it is first seen;
//! a later sync matches each file to that record by path, then by slug, then by
//! title and date (or identical content), so renaming or moving a file never
//! makes a new post. This is a pure function of what is stored and what is on
//! disk, so each rule is tested on its own.

use std::collections::{HashMap, HashSet};

use crate::domain::{FilePost, PostSource};

/// What a sync needs to know about a stored post.
#[derive(Debug, Clone)]
pub(super) struct Known {
    pub id: i64,
    pub slug: String,
    pub source: PostSource,
    pub title: String,
    pub published_at: i64,
    pub content_hash: String,
    pub removed: bool,
}

/// What to do with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Match {
    /// The stored post `known[i]`, exactly as it is.
    Unchanged(usize),
    /// The stored post `known[i]`, to be updated from the file.
    Changed(usize),
    /// A post seen for the first time.
    New,
    /// The file's slug belongs to another post: the file is not stored.
    SlugTaken,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Plan {
    /// One decision per file, in the order given.
    pub files: Vec<Match>,
    /// Stored file posts whose file is gone (indexes into `known`).
    pub removed: Vec<usize>,
}

/// Who holds a slug while the plan is made.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holder {
    Known(usize),
    NewFile(usize),
}

/// Matches `files` to `known` posts. `unreadable` names files that exist but
/// could not be parsed: their posts are neither matched to another file nor
/// removed.
pub(super) fn plan(known: &[Known], files: &[FilePost], unreadable: &[String]) -> Plan {
    let present: HashSet<&str> = files
        .iter()
        .map(|f| f.path.as_str())
        .chain(unreadable.iter().map(String::as_str))
        .collect();
    let file_of = |k: &Known| k.source.file().map(str::to_string);
    let by_path: HashMap<String, usize> = known
        .iter()
        .enumerate()
        .filter_map(|(i, k)| Some((file_of(k)?, i)))
        .collect();
    let by_slug: HashMap<&str, usize> = known
        .iter()
        .enumerate()
        .map(|(i, k)| (k.slug.as_str(), i))
        .collect();
    let mut slug_holder: HashMap<String, Holder> = known
        .iter()
        .enumerate()
        .map(|(i, k)| (k.slug.clone(), Holder::Known(i)))
        .collect();
    let mut claimed: HashSet<usize> = HashSet::new();
    let mut decisions = Vec::with_capacity(files.len());

    for (n, file) in files.iter().enumerate() {
        // A stored post whose own file is still there is not free to match another file.
        let free = |i: &usize, claimed: &HashSet<usize>| {
            let held = known[*i]
                .source
                .file()
                .is_some_and(|p| present.contains(p) && p != file.path);
            !claimed.contains(i) && !held
        };
        // Moved: its old file is gone, and the title and date (or the bytes) are the same.
        let moved = |i: &usize, claimed: &HashSet<usize>| {
            let k = &known[*i];
            free(i, claimed)
                && k.source.file().is_some_and(|p| !present.contains(p))
                && ((k.title == file.title && k.published_at == file.date.timestamp_millis())
                    || k.content_hash == file.content_hash)
        };
        let matched = by_path
            .get(&file.path)
            .copied()
            .filter(|i| !claimed.contains(i))
            .or_else(|| {
                by_slug
                    .get(file.slug.as_str())
                    .copied()
                    .filter(|i| free(i, &claimed))
            })
            .or_else(|| (0..known.len()).find(|i| moved(i, &claimed)));

        // Slugs are unique: a file may not take the slug of another post.
        let holder = slug_holder.get(file.slug.as_str()).copied();
        if holder.is_some() && holder != matched.map(Holder::Known) {
            if let Some(i) = matched {
                claimed.insert(i);
            }
            decisions.push(Match::SlugTaken);
            continue;
        }
        let decision = match matched {
            Some(i) => {
                claimed.insert(i);
                let k = &known[i];
                let same = k.content_hash == file.content_hash
                    && k.source.file() == Some(file.path.as_str())
                    && k.slug == file.slug.as_str()
                    && !k.removed;
                slug_holder.insert(file.slug.to_string(), Holder::Known(i));
                if same {
                    Match::Unchanged(i)
                } else {
                    Match::Changed(i)
                }
            }
            None => {
                slug_holder.insert(file.slug.to_string(), Holder::NewFile(n));
                Match::New
            }
        };
        decisions.push(decision);
    }

    let removed = known
        .iter()
        .enumerate()
        .filter(|(i, k)| {
            k.source.file().is_some_and(|p| !present.contains(p))
                && !k.removed
                && !claimed.contains(i)
        })
        .map(|(i, _)| i)
        .collect();
    Plan {
        files: decisions,
        removed,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::Slug;

    const DATE: i64 = 1_780_000_000_000;

    fn known(id: i64, path: &str, slug: &str, title: &str, hash: &str) -> Known {
        Known {
            id,
            slug: slug.into(),
            source: PostSource::File(path.into()),
            title: title.into(),
            published_at: DATE,
            content_hash: hash.into(),
            removed: false,
        }
    }

    fn file(path: &str, slug: &str, title: &str, hash: &str) -> FilePost {
        let date = Utc.timestamp_millis_opt(DATE).unwrap();
        FilePost {
            path: path.into(),
            slug: Slug::parse(slug).unwrap(),
            title: title.into(),
            date,
            local_date: date.date_naive(),
            updated: None,
            summary: String::new(),
            tags: vec![],
            draft: false,
            email: true,
            content_html: String::new(),
            content_hash: hash.into(),
        }
    }

    #[test]
    fn the_same_file_unchanged_or_edited() {
        let k = [known(1, "a.md", "a", "A", "h1")];
        let same = plan(&k, &[file("a.md", "a", "A", "h1")], &[]);
        assert_eq!(same.files, [Match::Unchanged(0)]);
        let edited = plan(&k, &[file("a.md", "a", "A!", "h2")], &[]);
        assert_eq!(edited.files, [Match::Changed(0)]);
        assert!(edited.removed.is_empty());
    }

    #[test]
    fn a_renamed_file_keeps_its_post_by_slug() {
        let k = [known(1, "a.md", "walk", "A", "h1")];
        let p = plan(&k, &[file("2026/b.md", "walk", "A", "h1")], &[]);
        assert_eq!(p.files, [Match::Changed(0)]);
        assert!(p.removed.is_empty());
    }

    #[test]
    fn a_moved_file_with_a_new_slug_keeps_its_post_by_title_and_date() {
        let k = [known(1, "a.md", "old", "Title", "h1")];
        let p = plan(&k, &[file("b.md", "new", "Title", "h2")], &[]);
        assert_eq!(p.files, [Match::Changed(0)]);
    }

    #[test]
    fn a_moved_file_with_new_slug_and_title_keeps_its_post_by_content() {
        let k = [known(1, "a.md", "old", "Title", "same-bytes")];
        let p = plan(&k, &[file("b.md", "new", "Other", "same-bytes")], &[]);
        assert_eq!(p.files, [Match::Changed(0)]);
    }

    #[test]
    fn a_post_whose_file_is_still_there_is_not_taken_by_a_copy() {
        let k = [known(1, "a.md", "a", "Title", "h1")];
        let p = plan(
            &k,
            &[
                file("a.md", "a", "Title", "h1"),
                file("copy.md", "copy", "Title", "h1"),
            ],
            &[],
        );
        assert_eq!(p.files, [Match::Unchanged(0), Match::New]);
    }

    #[test]
    fn a_slug_of_another_post_is_refused() {
        let k = [
            known(1, "a.md", "a", "A", "h1"),
            known(2, "b.md", "b", "B", "h2"),
        ];
        let p = plan(
            &k,
            &[file("a.md", "a", "A", "h1"), file("b.md", "a", "B", "h2")],
            &[],
        );
        assert_eq!(p.files, [Match::Unchanged(0), Match::SlugTaken]);
        assert!(p.removed.is_empty(), "b.md is there: its post stays");
    }

    #[test]
    fn two_new_files_cannot_share_a_slug() {
        let p = plan(
            &[],
            &[file("a.md", "x", "A", "h1"), file("b.md", "x", "B", "h2")],
            &[],
        );
        assert_eq!(p.files, [Match::New, Match::SlugTaken]);
    }

    #[test]
    fn a_deleted_file_removes_its_post_but_an_unreadable_one_does_not() {
        let k = [
            known(1, "gone.md", "gone", "G", "h1"),
            known(2, "broken.md", "broken", "B", "h2"),
        ];
        let p = plan(&k, &[], &["broken.md".to_string()]);
        assert_eq!(p.removed, [0]);
    }

    #[test]
    fn feed_posts_are_never_matched_to_files_nor_removed() {
        let mut k = known(1, "x", "walk", "Title", "h1");
        k.source = PostSource::Feed {
            source_id: 1,
            key: "guid".into(),
        };
        let p = plan(&[k], &[file("walk.md", "other", "Title", "h1")], &[]);
        assert_eq!(p.files, [Match::New]);
        assert!(p.removed.is_empty());
    }
}
