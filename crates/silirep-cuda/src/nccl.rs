//! NCCL, found and opened at run time.
//!
//! Types (communicator, data type, reduction, result codes) are cudarc's `nccl::sys`
//! bindings; the library itself is opened here rather than through cudarc's loader, because
//! cudarc looks only for `libnccl.so` and numbered names other than `libnccl.so.2` (the soname
//! NCCL ships under, and the only file the `nvidia-nccl-cu13` wheel has), and panics when none
//! loads. Here the search is explicit and a miss is an error that names every place looked:
//!
//! 1. `SILIREP_NCCL_LIB`, when set: that file and nothing else;
//! 2. the system loader path (`libnccl.so.2`, `libnccl.so`; `LD_LIBRARY_PATH`, ld.so.cache);
//! 3. the `nvidia-nccl-cu13` (or -cu12) Python wheel: `python3` is asked where `nvidia.nccl`
//!    lives, then common site-packages folders are searched for
//!    `nvidia/nccl/lib/libnccl.so.2`.

use cudarc::nccl::sys::{cudaStream_t, ncclComm_t, ncclDataType_t, ncclRedOp_t, ncclResult_t};
use libloading::Library;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::path::{Path, PathBuf};

/// The environment variable that names the NCCL library file to use.
pub const LIBRARY_VARIABLE: &str = "SILIREP_NCCL_LIB";

/// `NCCL_SPLIT_NOCOLOR`-free subset of nccl.h this backend calls.
pub struct Nccl {
    pub path: String,
    /// `ncclGetVersion`, e.g. 22805 → "2.28.5".
    pub version: String,
    comm_init_all: unsafe extern "C" fn(*mut ncclComm_t, c_int, *const c_int) -> ncclResult_t,
    comm_destroy: unsafe extern "C" fn(ncclComm_t) -> ncclResult_t,
    group_start: unsafe extern "C" fn() -> ncclResult_t,
    group_end: unsafe extern "C" fn() -> ncclResult_t,
    error_string: unsafe extern "C" fn(ncclResult_t) -> *const c_char,
    pub all_reduce: unsafe extern "C" fn(
        *const c_void,
        *mut c_void,
        usize,
        ncclDataType_t,
        ncclRedOp_t,
        ncclComm_t,
        cudaStream_t,
    ) -> ncclResult_t,
    pub all_gather: unsafe extern "C" fn(
        *const c_void,
        *mut c_void,
        usize,
        ncclDataType_t,
        ncclComm_t,
        cudaStream_t,
    ) -> ncclResult_t,
    pub reduce_scatter: unsafe extern "C" fn(
        *const c_void,
        *mut c_void,
        usize,
        ncclDataType_t,
        ncclRedOp_t,
        ncclComm_t,
        cudaStream_t,
    ) -> ncclResult_t,
    pub broadcast: unsafe extern "C" fn(
        *const c_void,
        *mut c_void,
        usize,
        ncclDataType_t,
        c_int,
        ncclComm_t,
        cudaStream_t,
    ) -> ncclResult_t,
    pub send: unsafe extern "C" fn(
        *const c_void,
        usize,
        ncclDataType_t,
        c_int,
        ncclComm_t,
        cudaStream_t,
    ) -> ncclResult_t,
    pub recv: unsafe extern "C" fn(
        *mut c_void,
        usize,
        ncclDataType_t,
        c_int,
        ncclComm_t,
        cudaStream_t,
    ) -> ncclResult_t,
    /// `ncclAlltoAll` (count per peer), in NCCL 2.28 and later: one collective where older
    /// libraries need grouped send/receive pairs.
    pub all_to_all: Option<
        unsafe extern "C" fn(
            *const c_void,
            *mut c_void,
            usize,
            ncclDataType_t,
            ncclComm_t,
            cudaStream_t,
        ) -> ncclResult_t,
    >,
    /// Keeps every function pointer above valid.
    _library: Library,
}

impl Nccl {
    /// Finds and opens NCCL (`SILIREP_NCCL_LIB` first); the error lists every place that
    /// was looked in.
    pub fn open() -> Result<Nccl, String> {
        let override_path = std::env::var_os(LIBRARY_VARIABLE).map(PathBuf::from);
        Nccl::open_from(override_path.as_deref())
    }

    /// [`Nccl::open`] with the override given rather than read from the environment.
    pub fn open_from(override_path: Option<&Path>) -> Result<Nccl, String> {
        let candidates = candidates(override_path);
        let mut tried = Vec::new();
        for candidate in &candidates {
            // SAFETY: NCCL's initialisers only register the library.
            match unsafe { Library::new(candidate) } {
                Ok(library) => {
                    return Nccl::bind(library, candidate.to_string_lossy().into_owned())
                        .map_err(|e| format!("{}: {e}", candidate.display()));
                }
                Err(e) => tried.push(format!("{} ({})", candidate.display(), short(&e))),
            }
        }
        Err(not_found_message(override_path, &tried))
    }

    fn bind(library: Library, path: String) -> Result<Nccl, String> {
        // SAFETY: every symbol is looked up with its nccl.h signature; the pointers are used
        // only while `library` lives (it is stored beside them).
        unsafe {
            macro_rules! symbol {
                ($name:literal) => {
                    *library
                        .get(concat!($name, "\0").as_bytes())
                        .map_err(|e| format!("symbol {} missing: {e}", $name))?
                };
            }
            let get_version: unsafe extern "C" fn(*mut c_int) -> ncclResult_t =
                symbol!("ncclGetVersion");
            let mut code: c_int = 0;
            if get_version(&mut code) != ncclResult_t::ncclSuccess {
                return Err("ncclGetVersion failed".into());
            }
            Ok(Nccl {
                path: loaded_file("libnccl").unwrap_or(path),
                version: version_string(code),
                comm_init_all: symbol!("ncclCommInitAll"),
                comm_destroy: symbol!("ncclCommDestroy"),
                group_start: symbol!("ncclGroupStart"),
                group_end: symbol!("ncclGroupEnd"),
                error_string: symbol!("ncclGetErrorString"),
                all_reduce: symbol!("ncclAllReduce"),
                all_gather: symbol!("ncclAllGather"),
                reduce_scatter: symbol!("ncclReduceScatter"),
                broadcast: symbol!("ncclBroadcast"),
                send: symbol!("ncclSend"),
                recv: symbol!("ncclRecv"),
                all_to_all: library.get(b"ncclAlltoAll\0").ok().map(|f| *f),
                _library: library,
            })
        }
    }

    /// `Ok` or an error naming the call and NCCL's own description of the failure.
    pub fn check(&self, what: &str, result: ncclResult_t) -> Result<(), String> {
        if result == ncclResult_t::ncclSuccess {
            return Ok(());
        }
        // SAFETY: NCCL returns a static NUL-terminated string for every result code.
        let text = unsafe { CStr::from_ptr((self.error_string)(result)) };
        Err(format!("{what}: {result:?} ({})", text.to_string_lossy()))
    }

    /// One communicator per GPU of `devices`, in that order (rank i is `devices[i]`), in this
    /// one process (`ncclCommInitAll`).
    pub fn init_all(&self, devices: &[u32]) -> Result<Vec<ncclComm_t>, String> {
        let list: Vec<c_int> = devices.iter().map(|d| *d as c_int).collect();
        let mut comms: Vec<ncclComm_t> = vec![std::ptr::null_mut(); devices.len()];
        // SAFETY: `comms` has room for one communicator per device in `list`.
        let result =
            unsafe { (self.comm_init_all)(comms.as_mut_ptr(), list.len() as c_int, list.as_ptr()) };
        self.check("ncclCommInitAll", result)?;
        Ok(comms)
    }

    /// # Safety
    /// `comm` came from [`Nccl::init_all`] of this library, is destroyed once, and no work
    /// on it is queued any more.
    pub unsafe fn destroy(&self, comm: ncclComm_t) {
        // SAFETY: as the caller promises.
        unsafe {
            (self.comm_destroy)(comm);
        }
    }

    /// Runs `body` between ncclGroupStart and ncclGroupEnd: one thread drives every GPU, so
    /// the calls for all ranks must be issued as one group or the first would wait forever.
    pub fn group(&self, body: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
        // SAFETY: plain calls; a group is always closed, also when `body` fails.
        self.check("ncclGroupStart", unsafe { (self.group_start)() })?;
        let inner = body();
        let end = self.check("ncclGroupEnd", unsafe { (self.group_end)() });
        inner.and(end)
    }
}

/// How a failed search is recorded for each collective: unsupported on this machine, with
/// the search's own message (which names every place looked), never a panic or an abort.
pub fn unavailable(message: &str) -> silirep_core::KernelError {
    silirep_core::KernelError::Unsupported(message.to_string())
}

/// Where NCCL is looked for, in order.
pub fn candidates(override_path: Option<&Path>) -> Vec<PathBuf> {
    if let Some(path) = override_path {
        return vec![path.to_path_buf()];
    }
    let mut out = vec![PathBuf::from("libnccl.so.2"), PathBuf::from("libnccl.so")];
    for dir in wheel_dirs() {
        let file = dir.join("lib").join("libnccl.so.2");
        if !out.contains(&file) {
            out.push(file);
        }
    }
    out
}

/// Folders that may hold the `nvidia.nccl` package: where `python3` imports it from, then
/// `nvidia/nccl` under common site-packages folders.
fn wheel_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let asked = std::process::Command::new("python3")
        .args([
            "-c",
            "import nvidia.nccl as m, os; print(os.path.dirname(m.__file__) if m.__file__ else list(m.__path__)[0])",
        ])
        .stderr(std::process::Stdio::null())
        .output();
    if let Ok(output) = asked
        && output.status.success()
    {
        let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if !text.is_empty() {
            dirs.push(PathBuf::from(text));
        }
    }
    let mut roots: Vec<PathBuf> = ["/usr/lib", "/usr/local/lib", "/opt/conda/lib"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(home) = std::env::var_os("HOME") {
        roots.push(PathBuf::from(home).join(".local/lib"));
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        roots.push(PathBuf::from(venv).join("lib"));
    }
    // Virtual environments under /opt (/opt/<name>/.venv/lib, /opt/<name>/lib).
    if let Ok(entries) = std::fs::read_dir("/opt") {
        let mut opt: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        opt.sort();
        for dir in opt {
            roots.push(dir.join(".venv/lib"));
            roots.push(dir.join("lib"));
        }
    }
    for root in roots {
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        let mut pythons: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("python3"))
            })
            .collect();
        pythons.sort();
        for python in pythons {
            for packages in ["site-packages", "dist-packages"] {
                let dir = python.join(packages).join("nvidia").join("nccl");
                if dir.is_dir() {
                    dirs.push(dir);
                }
            }
        }
    }
    dirs
}

/// The error a run records when no NCCL could be opened.
pub fn not_found_message(override_path: Option<&Path>, tried: &[String]) -> String {
    match override_path {
        Some(path) => format!(
            "NCCL could not be loaded from {LIBRARY_VARIABLE}={}: {}",
            path.display(),
            tried.join("; ")
        ),
        None => format!(
            "NCCL (libnccl.so.2) not found; looked in: {}. Install the nvidia-nccl-cu13 wheel or NCCL itself, or set {LIBRARY_VARIABLE} to the library file",
            tried.join("; ")
        ),
    }
}

/// The file a library whose name contains `stem` was mapped from (/proc/self/maps), so a
/// library opened by soname is recorded with the path the loader chose.
fn loaded_file(stem: &str) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    mapped_path(&maps, stem)
}

/// The first mapped file in `maps` (the /proc/self/maps format) whose name contains `stem`.
pub fn mapped_path(maps: &str, stem: &str) -> Option<String> {
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            path.starts_with('/')
                && Path::new(path)
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(stem))
        })
        .map(str::to_string)
}

/// NCCL ≥ 2.9 encodes x.y.z as x·10000 + y·100 + z.
pub fn version_string(code: i32) -> String {
    format!("{}.{}.{}", code / 10000, (code / 100) % 100, code % 100)
}

/// The loader's reason (dlerror's text, which libloading keeps as the error's source).
fn short(e: &libloading::Error) -> String {
    use std::error::Error;
    match e.source() {
        Some(reason) => reason.to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_decode() {
        assert_eq!(version_string(22805), "2.28.5");
        assert_eq!(version_string(21903), "2.19.3");
    }

    #[test]
    fn the_loaded_file_is_read_from_the_maps() {
        let maps = "7f00-7f10 r--p 00000000 00:1f 42 /usr/lib/x86_64-linux-gnu/libc.so.6\n\
                    7f20-7f30 r-xp 00001000 00:1f 43 /opt/venv/nvidia/nccl/lib/libnccl.so.2\n\
                    7f40-7f50 rw-p 00000000 00:00 0 \n";
        assert_eq!(
            mapped_path(maps, "libnccl").as_deref(),
            Some("/opt/venv/nvidia/nccl/lib/libnccl.so.2")
        );
        assert_eq!(mapped_path(maps, "libcublas"), None);
    }

    #[test]
    fn an_override_is_the_only_candidate() {
        let path = Path::new("/nonexistent/libnccl.so.2");
        assert_eq!(candidates(Some(path)), vec![path.to_path_buf()]);
        let default = candidates(None);
        assert_eq!(default[0], PathBuf::from("libnccl.so.2"));
    }

    /// A missing override is an error that names the file, never a panic, and no other
    /// library is tried in its place.
    #[test]
    fn a_missing_override_is_a_clear_error() {
        let path = Path::new("/nonexistent/silirep-test/libnccl.so.2");
        let message = match Nccl::open_from(Some(path)) {
            Ok(_) => panic!("a nonexistent file opened"),
            Err(message) => message,
        };
        assert!(
            message.contains("SILIREP_NCCL_LIB=/nonexistent/silirep-test/libnccl.so.2"),
            "{message}"
        );
        assert!(message.contains("No such file"), "{message}");
    }

    /// The error reaches the result file as the configuration's recorded failure.
    #[test]
    fn a_missing_library_becomes_a_recorded_failure() {
        let path = Path::new("/nonexistent/silirep-test/libnccl.so.2");
        let message = Nccl::open_from(Some(path)).err().expect("nothing to open");
        let recorded = unavailable(&message).to_measurement_error();
        assert_eq!(recorded.kind, silirep_core::schema::ErrorKind::Unsupported);
        assert!(
            recorded
                .message
                .contains("/nonexistent/silirep-test/libnccl.so.2")
        );
    }

    /// Without NCCL on the machine (CI), the search ends in an error naming the places it
    /// looked; with it, the library opens and reports a 2.x version.
    #[test]
    fn the_default_search_names_where_it_looked() {
        match Nccl::open_from(None) {
            Ok(nccl) => assert!(nccl.version.starts_with("2."), "{}", nccl.version),
            Err(message) => {
                assert!(message.contains("libnccl.so.2 ("), "{message}");
                assert!(message.contains("SILIREP_NCCL_LIB"), "{message}");
            }
        }
    }
}
