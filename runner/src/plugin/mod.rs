//! Finding and loading runtime plugins (the host side of `runbench-plugin-abi`).

mod discover;
mod load;
pub mod notes;
pub mod serve;

pub use discover::{discover, plugin_dir, PluginFile};
pub use load::{load, LoadError, LoadedPlugin, ServeFn};
