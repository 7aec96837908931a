//! Finding and loading runtime plugins (the host side of `runbench-plugin-abi`).

mod discover;
mod load;
pub mod notes;
pub mod serve;

pub use discover::{discover, plugin_dir, PluginFile};
pub use load::{load, LoadError, LoadedPlugin, ServeFn};

/// The SHA-256 of a plugin file (meta.json records it; a server agent refuses a plugin whose
/// hash is not the controller's).
pub fn sha256_file(path: &std::path::Path) -> String {
    use sha2::Digest;
    match std::fs::read(path) {
        Ok(bytes) => format!("{:x}", sha2::Sha256::digest(&bytes)),
        Err(e) => format!("unreadable: {e}"),
    }
}
