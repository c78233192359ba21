//! The few Linux system calls the runner needs, as small safe wrappers: signal handlers that
//! set a flag, sending a signal to a child, the parent-death signal of a worker, an exclusive
//! lock on a run folder, and a liveness check of a pid, all through the libc crate (the one
//! place the runner calls it). Nothing here decides policy; the pool and the worker do.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

pub const SIGINT: i32 = libc::SIGINT;
pub const SIGKILL: i32 = libc::SIGKILL;
pub const SIGUSR1: i32 = libc::SIGUSR1;
pub const SIGTERM: i32 = libc::SIGTERM;

/// The signals that ask a sweep or a worker to stop at the end of its current step:
/// Slurm's warning before the time limit (SIGUSR1), `kill`, and Ctrl-C.
pub const STOP_SIGNALS: [i32; 3] = [SIGINT, SIGUSR1, SIGTERM];

/// Calls `handler` (which must be async-signal-safe: set an atomic, nothing else) on each of
/// `sigs`.
pub fn on_signals(sigs: &[i32], handler: extern "C" fn(i32)) {
    for &s in sigs {
        // SAFETY: installing a handler that only touches atomics.
        unsafe {
            libc::signal(s, handler as extern "C" fn(i32) as libc::sighandler_t);
        }
    }
}

/// Sends `sig` to process `pid`; false if it no longer exists.
pub fn send_signal(pid: u32, sig: i32) -> bool {
    // SAFETY: plain syscall on a pid we own (a child of ours).
    unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
}

/// Whether a process with this pid exists on this machine (signal 0 probes without sending).
pub fn pid_alive(pid: u32) -> bool {
    pid > 0 && (send_signal(pid, 0) || std::io::Error::last_os_error().raw_os_error() == Some(1))
}

/// Asks the kernel to send `sig` to this process when its parent dies (PR_SET_PDEATHSIG).
/// Returns false when the parent is already gone (it died before the request took effect):
/// `expected_parent` is the pid the parent announced, when it did.
pub fn die_with_parent(sig: i32, expected_parent: Option<u32>) -> bool {
    // SAFETY: prctl(PR_SET_PDEATHSIG, sig) takes an unsigned long and has no other effect.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong);
    }
    // SAFETY: getppid cannot fail.
    let ppid = unsafe { libc::getppid() };
    match expected_parent {
        Some(p) => ppid as u32 == p,
        None => ppid != 1,
    }
}

/// An exclusive `flock` on a file, released when dropped or when the process dies (even by
/// SIGKILL), so a crashed holder never leaves a stale lock behind.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Takes the exclusive lock on `path` without waiting and writes `holder` into the file.
/// `Ok(Err(who))` when another process holds it, with what that holder wrote.
pub fn try_lock(path: &Path, holder: &str) -> std::io::Result<Result<Lock, String>> {
    let mut f = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(e);
        }
        let mut who = String::new();
        let _ = f.read_to_string(&mut who);
        return Ok(Err(who.trim().to_string()));
    }
    f.set_len(0)?;
    f.rewind()?;
    f.write_all(holder.as_bytes())?;
    Ok(Ok(Lock { _file: f }))
}

/// `try_lock`, retried for up to `wait`: a holder that was just killed releases its lock
/// only at the very end of its exit, a moment after it has vanished from `ps`.
pub fn lock_within(path: &Path, holder: &str, wait: std::time::Duration) -> std::io::Result<Result<Lock, String>> {
    let start = std::time::Instant::now();
    loop {
        match try_lock(path, holder)? {
            Err(_) if start.elapsed() < wait => std::thread::sleep(std::time::Duration::from_millis(50)),
            r => return Ok(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_file_is_refused_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("wt-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("lock");
        let first = try_lock(&p, "host 1").unwrap().expect("first lock");
        // flock locks belong to the open file description, so a second open in the same
        // process conflicts just as another process would.
        assert_eq!(try_lock(&p, "host 2").unwrap().unwrap_err(), "host 1");
        drop(first);
        assert!(try_lock(&p, "host 3").unwrap().is_ok());
        assert!(pid_alive(std::process::id()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The memory this process may use, in bytes, and where the figure comes from: the smaller of
/// the machine's RAM (MemTotal) and its cgroup's limit (a container's or a Slurm job's), if
/// either can be read. Total, not free: other programs come and go, a plan should not.
pub fn memory_limit() -> Option<(f64, String)> {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some((kb * 1024.0, "MemTotal in /proc/meminfo".to_string()))
    });
    let cgroup = [
        ("/sys/fs/cgroup/memory.max", "the cgroup limit in /sys/fs/cgroup/memory.max"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "the cgroup limit in memory.limit_in_bytes"),
    ]
    .iter()
    .find_map(|(p, what)| {
        let v: f64 = std::fs::read_to_string(p).ok()?.trim().parse().ok()?;
        // cgroup v1 writes "no limit" as a number near 2^63.
        (v > 0.0 && v < 1e18).then(|| (v, what.to_string()))
    });
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(if c.0 < t.0 { c } else { t }),
        (t, c) => t.or(c),
    }
}

/// Free bytes for an unprivileged writer on the filesystem that holds `path` (or its nearest
/// existing ancestor: the results folder may not exist yet).
pub fn disk_free(path: &Path) -> Option<f64> {
    let mut p = path;
    while !p.exists() {
        p = p.parent().filter(|q| !q.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if p == Path::new(".") && !p.exists() {
            return None;
        }
    }
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs fills the struct it is given; the path is a valid C string.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some(s.f_bavail as f64 * s.f_frsize as f64)
}
