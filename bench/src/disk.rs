//! The data disk's flush time, what bounds SQLite's writing routes: SQLite has one writer, and in
//! WAL mode with `synchronous = FULL` (sqlx's default, kept so that a power cut loses no
//! commit) each commit waits for its own flush of the log. A disk that flushes in 2 ms on
//! average allows 500 writing requests a second and no more; past that they queue however fast
//! the backend is. (PostgreSQL shares one flush among the commits waiting for it.)

use std::{fs::OpenOptions, os::unix::fs::FileExt, path::Path, time::Instant};

use hdrhistogram::Histogram;

/// A log page appended and flushed, `count` times, in a file in `folder` (removed after): each
/// flush's time in microseconds, in a histogram as the routes' latencies are (`load`).
pub fn flushes(folder: &Path, count: usize) -> anyhow::Result<Histogram<u64>> {
    let path = folder.join("flush-probe");
    let file = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path)?;
    let page = [0x5a_u8; 4096];
    let mut times = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    for i in 0..count {
        // Appended, as the log grows between checkpoints.
        let offset = u64::try_from(i * page.len())?;
        let start = Instant::now();
        file.write_all_at(&page, offset)?;
        file.sync_data()?;
        times.saturating_record(u64::try_from(start.elapsed().as_micros())?);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_flushes_in_the_folder_and_leaves_nothing() {
        let folder = tempfile::tempdir().unwrap();
        let times = flushes(folder.path(), 3).unwrap();
        assert_eq!(times.len(), 3);
        assert!(times.max() > 0, "a flush takes time");
        assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 0);
    }
}
