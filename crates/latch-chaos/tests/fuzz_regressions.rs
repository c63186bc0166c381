//! The fuzz regressions: every file in `fuzz/regressions/<target>/` (crash
//! inputs that `scripts/fuzz.sh` found and copied there, and hand-picked
//! tricky inputs) and every seed in `fuzz/corpus/<target>/seed-*` is replayed
//! through the very harness that fuzzes that target (`fuzz/src/lib.rs`,
//! included here), in a normal `cargo test`, without sanitizers or nightly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files in `dir` (sorted), keeping those whose name passes `keep`.
fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && keep(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    out.sort();
    out
}

/// Run every file through `harness`, collecting the names of those that panic.
fn replay(harness: harness::Harness, inputs: &[PathBuf]) -> Vec<String> {
    inputs
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            std::panic::catch_unwind(|| harness(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect()
}

#[test]
fn every_regression_input_replays_cleanly() {
    let root = fuzz_dir().join("regressions");
    let mut failed = Vec::new();
    let mut counts = Vec::new();
    for (target, harness) in harness::TARGETS {
        let inputs = files(&root.join(target), |_| true);
        assert!(
            !inputs.is_empty(),
            "fuzz/regressions/{target}/ has no input (run `cargo run -p latch-chaos --example fuzz_seeds`)"
        );
        failed.extend(replay(*harness, &inputs));
        counts.push(format!("{target} {}", inputs.len()));
    }
    eprintln!("fuzz regressions replayed: {}", counts.join(", "));
    assert!(
        failed.is_empty(),
        "regression inputs that fail: {failed:#?}"
    );
}

#[test]
fn regression_folders_are_named_after_targets() {
    for entry in std::fs::read_dir(fuzz_dir().join("regressions")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            harness::TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/regressions/{name}/ names no fuzz target, so nothing replays it"
        );
    }
}

#[test]
fn seed_corpus_replays_cleanly_and_its_tokens_are_still_authentic() {
    let root = fuzz_dir().join("corpus");
    let mut failed = Vec::new();
    for (target, harness) in harness::TARGETS {
        let seeds = files(&root.join(target), |n| n.starts_with("seed-"));
        assert!(
            !seeds.is_empty(),
            "fuzz/corpus/{target}/ has no seed-* file"
        );
        failed.extend(replay(*harness, &seeds));
        for seed in seeds
            .iter()
            .filter(|p| p.to_string_lossy().contains("seed-valid-"))
        {
            let data = std::fs::read(seed).unwrap();
            assert_eq!(
                harness::raw_token_opens(target, &data),
                Some(true),
                "{} no longer opens: delete it and run `cargo run -p latch-chaos --example fuzz_seeds`",
                seed.display()
            );
        }
    }
    assert!(failed.is_empty(), "seeds that fail: {failed:#?}");
}
