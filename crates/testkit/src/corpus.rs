//! The checked-in fuzz corpus (`fuzz/corpus/TARGET/`), replayed by each
//! crate's unit tests so that every seed runs on every test command, not
//! only under `cargo fuzz`.

use std::path::Path;

/// Runs `entry` on every file of the checked-in corpus of `target`; fails
/// if the corpus is missing or empty. The file being replayed is printed
/// first, so a seed that fails is named beside the panic.
pub fn replay_corpus(target: &str, entry: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files = 0;
    for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = file.unwrap().path();
        eprintln!("replaying {}", path.display());
        entry(&std::fs::read(&path).unwrap());
        files += 1;
    }
    assert!(files > 0, "{} holds no seed", dir.display());
}
