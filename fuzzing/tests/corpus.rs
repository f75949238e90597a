//! The committed fuzz corpus (`fuzz/corpus/<target>/`, inputs the fuzzer found interesting and
//! every crash it ever found, minimised) replayed through each target's checks: a regression
//! test for each, in the ordinary test run. `scripts/fuzz.sh` is the long run.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no corpus for {target} in {}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()).map_err(|e| e.to_string()))
        .map(|path| {
            let path = path.unwrap_or_else(|e| panic!("{e}"));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn every_target_has_a_corpus_and_passes_it() {
    for (target, check) in fuzzing::TARGETS {
        let inputs = corpus(target);
        assert!(!inputs.is_empty(), "{target}: empty corpus");
        for (path, bytes) in inputs {
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{target}: {} fails", path.display());
        }
    }
}
