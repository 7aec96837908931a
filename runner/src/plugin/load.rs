//! Opens a plugin library and checks its header before anything else is called.

use runbench_plugin_abi::{
    PluginHeader, ABI_VERSION, ENTRY_SYMBOL, MAGIC, NEEDS_TAP, NEEDS_THREAD_PER_CONNECTION,
    WORKLOAD_V1,
};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin {}: file not found", path.display())]
    Missing { path: PathBuf },
    #[error("plugin {}: not a loadable library for this machine: {reason}", path.display())]
    NotALibrary { path: PathBuf, reason: String },
    #[error("plugin {}: built for {found}, but this runbench runs on {expected}; build the plugin for this machine", path.display())]
    WrongArchitecture {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("plugin {}: no `{ENTRY_SYMBOL}` symbol; is it a runbench plugin built with export_plugin!?", path.display())]
    NoSymbol { path: PathBuf },
    #[error("plugin {}: bad header magic; not a runbench plugin", path.display())]
    BadMagic { path: PathBuf },
    #[error("plugin {}: ABI version {found}, this runbench expects {expected}; rebuild the plugin", path.display())]
    AbiVersion {
        path: PathBuf,
        expected: u32,
        found: u32,
    },
    #[error("plugin {}: header of {found} bytes is smaller than ABI v{ABI_VERSION}'s minimum of {expected}", path.display())]
    HeaderSize {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
}

/// A plugin whose header checked out. The library is deliberately leaked: plugins are never
/// unloaded (a runtime's threads may outlive `serve`).
pub struct LoadedPlugin {
    pub path: PathBuf,
    /// A raw pointer, not a reference: an older plugin's static header is shorter than today's
    /// `PluginHeader`, so fields are read one by one, appended ones only when `header_size`
    /// covers them.
    header: *const PluginHeader,
    header_size: usize,
}

// SAFETY: the header is immutable static data of a library that is never unloaded.
unsafe impl Send for LoadedPlugin {}
unsafe impl Sync for LoadedPlugin {}

/// The plugin's `serve` entry point (see [`PluginHeader::serve`]).
pub type ServeFn = unsafe extern "C" fn(
    *const runbench_plugin_abi::ServeConfig,
    *const runbench_plugin_abi::HostApi,
    *mut runbench_plugin_abi::ServeReport,
) -> runbench_plugin_abi::Status;

impl LoadedPlugin {
    pub fn name(&self) -> &'static str {
        // SAFETY: a v1 field of a checked header; it points at static strings inside the
        // never-unloaded library.
        unsafe {
            std::ptr::addr_of!((*self.header).runtime_name)
                .read()
                .as_str()
        }
    }
    pub fn runtime_version(&self) -> &'static str {
        // SAFETY: as above.
        unsafe {
            std::ptr::addr_of!((*self.header).runtime_version)
                .read()
                .as_str()
        }
    }
    pub fn serve_fn(&self) -> ServeFn {
        // SAFETY: a v1 field of a checked header.
        unsafe { std::ptr::addr_of!((*self.header).serve).read() }
    }
    /// [`PluginHeader::needs`] bits; 0 for a plugin built before the field existed.
    pub fn needs(&self) -> u32 {
        if self.header_size < PluginHeader::NEEDS_END {
            return 0;
        }
        // SAFETY: the plugin's own header_size says its static header extends over `needs`.
        unsafe { std::ptr::addr_of!((*self.header).needs).read() }
    }
    pub fn needs_tap(&self) -> bool {
        self.needs() & NEEDS_TAP != 0
    }
    pub fn thread_per_connection(&self) -> bool {
        self.needs() & NEEDS_THREAD_PER_CONNECTION != 0
    }
    /// [`PluginHeader::connection_limit`]: most connections it can serve at once by its nature.
    pub fn connection_limit(&self) -> Option<u64> {
        if self.header_size < PluginHeader::LIMIT_END {
            return None;
        }
        // SAFETY: the plugin's own header_size says its static header extends over the field.
        let limit = unsafe { std::ptr::addr_of!((*self.header).connection_limit).read() };
        (limit > 0).then_some(limit)
    }
    /// [`PluginHeader::workloads`]: the parts of a workload it serves ([`WORKLOAD_V1`] for a
    /// plugin built before the field existed).
    pub fn workloads(&self) -> u32 {
        if self.header_size < PluginHeader::WORKLOADS_END {
            return WORKLOAD_V1;
        }
        // SAFETY: the plugin's own header_size says its static header extends over the field.
        unsafe { std::ptr::addr_of!((*self.header).workloads).read() }
    }
    /// [`PluginHeader::http_stack`]: what serves its HTTP; empty for a plugin without HTTP or
    /// built before the field existed.
    pub fn http_stack(&self) -> &'static str {
        if self.header_size < PluginHeader::HTTP_STACK_END {
            return "";
        }
        // SAFETY: the plugin's own header_size says its static header extends over the field,
        // which points at a static string inside the never-unloaded library.
        unsafe {
            std::ptr::addr_of!((*self.header).http_stack)
                .read()
                .as_str()
        }
    }
}

/// Why `dlopen` refused `path`. glibc's own message for a library of another architecture is
/// "cannot open shared object file: No such file or directory" for a file that plainly exists,
/// so the file's header is read to say what it really is.
fn why_not_loadable(path: &Path, err: libloading::Error) -> LoadError {
    use object::Object;
    let parsed = std::fs::read(path).ok().and_then(|data| {
        let file = object::File::parse(&*data).ok()?;
        Some((file.architecture(), file.is_64()))
    });
    if let Some((arch, is_64)) = parsed {
        let host = host_architecture();
        if host == object::Architecture::Unknown {
            return LoadError::NotALibrary {
                path: path.to_path_buf(),
                reason: err.to_string(),
            };
        }
        if arch != host || is_64 != cfg!(target_pointer_width = "64") {
            let bits = if is_64 { 64 } else { 32 };
            return LoadError::WrongArchitecture {
                path: path.to_path_buf(),
                found: format!("{arch:?} ({bits}-bit)"),
                expected: format!("{host:?} ({}-bit)", usize::BITS),
            };
        }
    }
    LoadError::NotALibrary {
        path: path.to_path_buf(),
        reason: err.to_string(),
    }
}

/// The architecture this binary was built for, in `object`'s terms.
fn host_architecture() -> object::Architecture {
    use object::Architecture as A;
    match std::env::consts::ARCH {
        "x86_64" => A::X86_64,
        "x86" => A::I386,
        "aarch64" => A::Aarch64,
        "arm" => A::Arm,
        "riscv64" => A::Riscv64,
        "powerpc64" => A::PowerPc64,
        "s390x" => A::S390x,
        "loongarch64" => A::LoongArch64,
        _ => A::Unknown,
    }
}

/// Loads with RTLD_LOCAL (libloading's default on Unix), so one plugin's global symbols cannot
/// clash with the host's or another plugin's. Keep it so: the embassy plugin exports `__pender`
/// and `_embassy_time_*` symbols, and loaded RTLD_GLOBAL they abort the host process.
pub fn load(path: &Path) -> Result<LoadedPlugin, LoadError> {
    let path = path.to_path_buf();
    if !path.exists() {
        return Err(LoadError::Missing { path });
    }
    // SAFETY: loading runs the library's initialisers; runbench plugins have none beyond Rust's.
    let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| why_not_loadable(&path, e))?;
    let lib: &'static libloading::Library = Box::leak(Box::new(lib));
    // SAFETY: the symbol's type is fixed by the ABI crate; checked through the header below.
    let entry =
        unsafe { lib.get::<extern "C" fn() -> *const PluginHeader>(ENTRY_SYMBOL.as_bytes()) }
            .map_err(|_| LoadError::NoSymbol { path: path.clone() })?;
    let ptr = entry();
    // SAFETY: a plugin returns a pointer to its static header; the first three fields
    // (magic, version, size) are stable across all ABI versions, so reading them is safe.
    let (magic, version, size) = unsafe {
        (
            std::ptr::addr_of!((*ptr).magic).read(),
            std::ptr::addr_of!((*ptr).abi_version).read(),
            std::ptr::addr_of!((*ptr).header_size).read(),
        )
    };
    if magic != MAGIC {
        return Err(LoadError::BadMagic { path });
    }
    if version != ABI_VERSION {
        return Err(LoadError::AbiVersion {
            path,
            expected: ABI_VERSION,
            found: version,
        });
    }
    // Fields appended later are optional (see `needs`); only the v1 part must be there.
    let expected = PluginHeader::V1_SIZE;
    if (size as usize) < expected {
        return Err(LoadError::HeaderSize {
            path,
            expected,
            found: size as usize,
        });
    }
    Ok(LoadedPlugin {
        path,
        header: ptr,
        header_size: size as usize,
    })
}
