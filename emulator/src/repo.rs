//! Where the checkout is whose scripts and template the emulation uses.

use std::path::{Path, PathBuf};

/// The checkout whose scripts install and start what the emulation needs: the
/// current directory or the nearest parent with `scripts/tools.sh`, else this crate's.
pub fn repo_root() -> PathBuf {
    let mut dir = std::env::current_dir().ok();
    while let Some(d) = dir {
        if d.join("scripts/tools.sh").is_file() {
            return d;
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The repository's `template.yaml`.
pub fn default_template() -> PathBuf {
    repo_root().join("template.yaml")
}
