use std::process::ExitCode;

use super::{Output, PostsCommand};
use crate::app::{App, ArchiveReport, ArchiveSource};
use crate::error::Error;

pub async fn run(app: &App, out: &Output, command: PostsCommand) -> Result<ExitCode, Error> {
    match command {
        PostsCommand::Import { source, from, base } => {
            let report = app
                .archives()
                .import(&ArchiveSource::new(&source, from, base))
                .await?;
            out.print(&report, || report_text(&report));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What an archive import did, as the author reads it.
fn report_text(report: &ArchiveReport) -> String {
    let mut text = format!(
        "{} archive: imported {} post(s) into posts/, never to be mailed; {} image(s) downloaded\n",
        report.format,
        report.imported.len(),
        report.images
    );
    for slug in &report.imported {
        text.push_str(&format!("  + {slug}\n"));
    }
    if !report.already_there.is_empty() {
        text.push_str(&format!(
            "already there, left as they are: {}\n",
            report.already_there.join(", ")
        ));
    }
    for d in &report.made_drafts {
        text.push_str(&format!(
            "made a draft, since the archive is public: {} ({})\n",
            d.entry, d.reason
        ));
    }
    for s in &report.skipped {
        text.push_str(&format!("skipped {}: {}\n", s.entry, s.reason));
    }
    for f in &report.failed_images {
        text.push_str(&format!(
            "image not downloaded for {} (the old URL stays): {}: {}\n",
            f.post, f.url, f.reason
        ));
    }
    text
}
