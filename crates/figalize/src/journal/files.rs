//! The journal's folder: its lock, its segment files, reading one back at start.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{Entry, JournalMetrics, SEGMENT_BYTES, format};

/// Takes the folder's lock file, or names the other process's claim.
pub(super) fn lock(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("JOURNAL_DIR {}: cannot open its lock", dir.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => anyhow::bail!(
            "JOURNAL_DIR {}: another process is using this journal; give each process a folder of its own",
            dir.display()
        ),
        Err(TryLockError::Error(err)) => {
            Err(err).with_context(|| format!("JOURNAL_DIR {}: cannot lock it", dir.display()))
        }
    }
}

/// The segment files in `dir`, oldest first.
pub(super) fn segment_files(dir: &Path) -> anyhow::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    let listing = fs::read_dir(dir)
        .with_context(|| format!("JOURNAL_DIR {}: cannot list it", dir.display()))?;
    for dir_entry in listing {
        let path = dir_entry
            .with_context(|| format!("JOURNAL_DIR {}: cannot list it", dir.display()))?
            .path();
        let number = path
            .extension()
            .filter(|extension| *extension == "journal")
            .and(path.file_stem())
            .and_then(|stem| stem.to_str())
            .and_then(|stem| stem.parse::<u64>().ok());
        if let Some(number) = number {
            found.push((number, path));
        }
    }
    found.sort_unstable();
    Ok(found)
}

pub(super) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.journal"))
}

/// The records of a segment file. Damage is logged and counted, never fatal: a damaged tail is
/// skipped, a file that is not a segment is set aside as `<name>.corrupt`.
pub(super) fn read_segment(path: &Path, metrics: &JournalMetrics) -> Vec<Entry> {
    let parsed = fs::read(path)
        .map_err(|err| err.to_string())
        .and_then(|data| {
            format::parse(&data)
                .map(|parsed| (parsed, data.len()))
                .map_err(|err| err.to_string())
        });
    match parsed {
        Ok((parsed, length)) => {
            if let Some(offset) = parsed.damaged_at {
                metrics.corrupt.inc();
                tracing::error!(
                    segment = %path.display(),
                    records = parsed.entries.len(),
                    offset,
                    skipped_bytes = length - offset,
                    "journal segment damaged (a write torn by a crash?): its records up to the damage are replayed, the rest skipped"
                );
            }
            parsed.entries
        }
        Err(reason) => {
            metrics.corrupt.inc();
            let aside = path.with_extension("journal.corrupt");
            tracing::error!(
                segment = %path.display(),
                reason,
                set_aside = %aside.display(),
                "journal segment unreadable: skipped and set aside"
            );
            if let Err(err) = fs::rename(path, &aside) {
                tracing::error!(error = %err, "cannot set the segment aside");
            }
            Vec::new()
        }
    }
}

/// Creates segment `number` at its full size — the magic, then zeros — synced along with the
/// folder's entry for it.
///
/// Made whole up front so that each later sync flushes only the records' own pages: an
/// overwrite of blocks already on disk changes none of the file's metadata, and `fdatasync`
/// then skips the filesystem journal's commit that every appending write would need.
pub(super) fn create_segment(dir: &Path, number: u64) -> std::io::Result<File> {
    let path = segment_path(dir, number);
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)?;
    let made = {
        let mut whole = vec![0; usize::try_from(SEGMENT_BYTES).expect("a segment fits in memory")];
        whole[..format::MAGIC.len()].copy_from_slice(format::MAGIC);
        file.write_all(&whole)
            .and_then(|()| file.sync_all())
            .and_then(|()| File::open(dir)?.sync_all())
    };
    if let Err(err) = made {
        // A half-made segment (a full disk) would be set aside as damage at the next start.
        let _ = fs::remove_file(&path);
        return Err(err);
    }
    Ok(file)
}

pub(super) fn remove(path: &Path) {
    if let Err(err) = fs::remove_file(path)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(segment = %path.display(), error = %err, "cannot delete a settled journal segment; it is replayed (harmlessly) at the next start");
    }
}
