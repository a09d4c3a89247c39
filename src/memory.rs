//! How much memory this process may still take, and how many workers' buffers fit in it.
//!
//! A worker that decodes compressed images holds a decoded image or two; on a machine (or a
//! batch job's cgroup, or under `ulimit -v`) with less memory than threads × that, running
//! every thread would end in the OOM killer or an aborted allocation. The run then uses as
//! many workers as fit, and allocations that still fail are reported as errors.

use std::fs;

/// The least of what the three limits a Linux process meets leave: the kernel's estimate of
/// memory available without swapping (`MemAvailable`), the cgroup v2 limit less its usage,
/// and the address-space limit (`RLIMIT_AS`, `ulimit -v`) less this process's size. `None`
/// when none of them can be read.
pub fn available() -> Option<u64> {
    [mem_available(), cgroup_headroom(), address_space_headroom()]
        .into_iter()
        .flatten()
        .min()
}

/// How many workers, each needing `per_worker` bytes, fit in three quarters of `available`
/// (the rest for everything else): at least 1, at most `threads`.
pub fn fitting_workers(per_worker: u64, threads: usize, available: Option<u64>) -> usize {
    match (available, per_worker) {
        (Some(bytes), 1..) => {
            let fit = (bytes / 4 * 3 / per_worker).max(1);
            threads.min(usize::try_from(fit).unwrap_or(usize::MAX))
        }
        _ => threads,
    }
}

/// `Some(value in bytes)` of a `/proc/meminfo` or `/proc/self/status` line `key:  N kB`.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    let rest = text.lines().find_map(|l| l.strip_prefix(key))?;
    let kib: u64 = rest
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

fn mem_available() -> Option<u64> {
    kib_field(&fs::read_to_string("/proc/meminfo").ok()?, "MemAvailable")
}

/// `memory.max − memory.current` of this process's cgroup (v2); `None` when unlimited.
fn cgroup_headroom() -> Option<u64> {
    let line = fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = line.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = format!("/sys/fs/cgroup{}", path.trim_end());
    let read = |name: &str| fs::read_to_string(format!("{dir}/{name}")).ok();
    let max: u64 = read("memory.max")?.trim().parse().ok()?;
    let current: u64 = read("memory.current")?.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// `RLIMIT_AS` (from `/proc/self/limits`, which needs no system call of our own) less VmSize.
fn address_space_headroom() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max address space"))?;
    // "unlimited" does not parse: no limit.
    let limit: u64 = line.split_whitespace().next()?.parse().ok()?;
    let size = kib_field(&fs::read_to_string("/proc/self/status").ok()?, "VmSize")?;
    Some(limit.saturating_sub(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_fit_the_memory_and_never_drop_below_one() {
        let gib = 1 << 30;
        assert_eq!(fitting_workers(gib, 16, Some(8 * gib)), 6);
        assert_eq!(fitting_workers(gib, 4, Some(8 * gib)), 4);
        assert_eq!(fitting_workers(4 * gib, 16, Some(gib)), 1);
        assert_eq!(fitting_workers(gib, 16, None), 16);
        assert_eq!(fitting_workers(0, 16, Some(1)), 16);
    }

    #[test]
    fn meminfo_lines_are_read_in_bytes() {
        let text = "MemTotal:       24000000 kB\nMemAvailable:   1000 kB\n";
        assert_eq!(kib_field(text, "MemAvailable"), Some(1_024_000));
        assert_eq!(kib_field(text, "SwapTotal"), None);
        assert!(available().is_some(), "Linux has /proc/meminfo");
    }
}
