//! Where a backup's bytes go: standard output, or a file of its own renamed
//! into place once whole, replacing only an earlier backup.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Where a backup goes: standard output, or a file written under a name of
/// its own and renamed into place.
pub(super) enum Destination {
    Stdout,
    File { path: PathBuf, partial: PathBuf },
}

/// A backup's bytes on their way out, counted.
pub(super) struct Sink {
    out: Box<dyn std::io::Write + Send>,
    file: Option<File>,
    pub(super) bytes: u64,
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl Sink {
    /// Flushed, and for a file, on disk.
    pub(super) fn sync(&mut self) -> std::io::Result<()> {
        std::io::Write::flush(self)?;
        match &self.file {
            Some(file) => file.sync_all(),
            None => Ok(()),
        }
    }
}

impl Destination {
    pub(super) fn open(path: &Path) -> Result<Destination, Error> {
        if path.as_os_str() == "-" {
            return Ok(Destination::Stdout);
        }
        let refuse = |why: &str| {
            Error::Invalid(format!(
                "{} {why}; name a new file, or `-` for standard output. Nothing was written",
                path.display()
            ))
        };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.is_file() => {
                return Err(refuse("exists and is not a regular file"));
            }
            Ok(meta) if meta.len() > 0 && !is_gzip(path)? => {
                return Err(refuse("exists and is not a backup, so it is not replaced"));
            }
            _ => {}
        }
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(refuse("is in a folder that does not exist"));
        }
        // A name no other backup uses, even one running now to the same path.
        let mut partial = path.as_os_str().to_owned();
        partial.push(format!(
            ".partial-{}",
            crate::domain::hex(&rand::random::<[u8; 6]>())
        ));
        Ok(Destination::File {
            path: path.to_path_buf(),
            partial: PathBuf::from(partial),
        })
    }

    /// Where the bytes are being written, for errors.
    pub(super) fn writing(&self) -> &Path {
        match self {
            Destination::Stdout => Path::new("standard output"),
            Destination::File { partial, .. } => partial,
        }
    }

    pub(super) fn file(&self) -> Result<Sink, Error> {
        match self {
            Destination::Stdout => Ok(Sink {
                out: Box::new(std::io::stdout()),
                file: None,
                bytes: 0,
            }),
            Destination::File { partial, .. } => {
                use std::os::unix::fs::OpenOptionsExt;
                // New, never an existing file or a link; only its owner reads it.
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(partial)
                    .map_err(|e| Error::io(partial, e))?;
                let handle = file.try_clone().map_err(|e| Error::io(partial, e))?;
                Ok(Sink {
                    out: Box::new(file),
                    file: Some(handle),
                    bytes: 0,
                })
            }
        }
    }

    /// Removes this backup's own unfinished file, and nothing else.
    pub(super) fn discard(&self) {
        if let Destination::File { partial, .. } = self {
            let _ = std::fs::remove_file(partial);
        }
    }

    /// Renames the whole file into place, and makes the rename last.
    pub(super) fn finish(&self) -> Result<(), Error> {
        let Destination::File { path, partial } = self else {
            return Ok(());
        };
        if let Err(e) = std::fs::rename(partial, path) {
            self.discard();
            return Err(Error::io(path, e));
        }
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(folder)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| Error::io(folder, e))
    }
}

/// Whether the file begins as gzip does.
fn is_gzip(path: &Path) -> Result<bool, Error> {
    let mut magic = [0_u8; 2];
    let read = File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .map(|()| magic == [0x1f, 0x8b]);
    match read {
        Ok(gzip) => Ok(gzip),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}
