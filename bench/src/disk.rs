//! The data disk's flush time, what bounds SQLite's writing routes: SQLite has one writer, and in
//! WAL mode with `synchronous = FULL` (sqlx's default, kept so that a power cut loses no
//! commit) each commit waits for its own flush of the log. A disk that flushes in 2 ms on
//! average allows 500 writing requests a second and no more; past that they queue however fast
//! the backend is. (PostgreSQL shares one flush among the commits waiting for it.)

use std::{
    fs::OpenOptions,
    os::unix::fs::FileExt,
    path::Path,
    time::{Duration, Instant},
};

/// A log page written in place and flushed, `count` times, in a file in `folder` (removed
/// after): how long each flush took.
pub fn flushes(folder: &Path, count: usize) -> anyhow::Result<Vec<Duration>> {
    let path = folder.join("flush-probe");
    let file = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path)?;
    let page = [0x5a_u8; 4096];
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        // Appended, as the log grows between checkpoints.
        let offset = u64::try_from(i * page.len())?;
        let start = Instant::now();
        file.write_all_at(&page, offset)?;
        file.sync_data()?;
        times.push(start.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(times)
}

/// The `q` quantile (0..=1) of `times`, in milliseconds.
pub fn quantile_ms(times: &[Duration], q: f64) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort();
    let Some(last) = sorted.len().checked_sub(1) else { return f64::NAN };
    // Nearest rank: the quantile is a time that was measured.
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[rank.min(last)].as_secs_f64() * 1000.0
}

pub fn mean_ms(times: &[Duration]) -> f64 {
    times.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / times.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_measured_times() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&times, 0.5), 50.0);
        assert_eq!(quantile_ms(&times, 0.99), 99.0);
        assert_eq!(quantile_ms(&times, 1.0), 100.0);
        assert!((mean_ms(&times) - 50.5).abs() < 1e-9);
        assert!(quantile_ms(&[], 0.5).is_nan());
    }

    #[test]
    fn the_probe_flushes_in_the_folder_and_leaves_nothing() {
        let folder = tempfile::tempdir().unwrap();
        let times = flushes(folder.path(), 3).unwrap();
        assert_eq!(times.len(), 3);
        assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 0);
    }
}
