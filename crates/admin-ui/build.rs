//! Embeds the vendored Admin UI (`ui/dist`, refreshed by
//! `scripts/update-admin-ui.sh`) and its icon font (`ui/mdi`, served under
//! `mdi/<version>/`): writes a table of the files, each an
//! `include_bytes!`, to `$OUT_DIR/assets.rs`. A table made here rather than
//! by hand because the bundles' names carry content hashes that change with
//! every version.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let ui = root.join("ui");
    println!("cargo:rerun-if-changed={}", ui.display());
    let dist = ui.join("dist");
    let mut files = Vec::new();
    collect(&dist, &dist, "", &mut files);
    let mdi = ui.join("mdi");
    let mdi_version = std::fs::read_to_string(mdi.join("VERSION")).unwrap_or_default();
    let prefix = format!("mdi/{}/", mdi_version.trim());
    for dir in ["css", "fonts"] {
        collect(&mdi, &mdi.join(dir), &prefix, &mut files);
    }
    files.sort();
    let mut table = String::from("&[\n");
    for (name, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            table,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    table.push(']');
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("assets.rs");
    if let Err(error) = std::fs::write(&out, table) {
        panic!("cannot write {}: {error}", out.display());
    }
}

/// Every file under `dir`, named `prefix` + its path relative to `base`
/// (`/`-separated).
fn collect(base: &Path, dir: &Path, prefix: &str, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        panic!(
            "{} is missing: run scripts/update-admin-ui.sh",
            dir.display()
        );
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(base, &path, prefix, files);
        } else if let Ok(relative) = path.strip_prefix(base) {
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((format!("{prefix}{name}"), path));
        }
    }
}
