//! What Linux tells about a process in `/proc`: CPU time, resident memory, threads, open
//! file descriptors, and the kernel memory that threads take.

use std::fs;

/// Clock ticks per second in `/proc/PID/stat` (the kernel's `USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// User plus system CPU time of process `pid` (this process when `None`), in seconds,
/// counting its threads that have ended too. `None` when the process is gone.
/// The resolution is one clock tick, 10 ms.
pub fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = fs::read_to_string(path).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11); // field 3 is the first here
    let utime: u64 = fields.next()?.parse().ok()?; // field 14
    let stime: u64 = fields.next()?.parse().ok()?; // field 15
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

/// One look at a server process, for the idle and curve measurements.
#[derive(Clone, Copy, Debug)]
pub struct Footprint {
    /// Resident memory (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Threads of the process.
    pub threads: u64,
    /// Open file descriptors of the process.
    pub fds: u64,
    /// Kernel memory holding the process' page tables (`VmPTE`), KiB: each thread stack
    /// mapped adds to it.
    pub page_tables_kib: u64,
    /// Kernel memory holding the stacks of every thread on the machine (`KernelStack` in
    /// `/proc/meminfo`), KiB. Machine-wide: anything else running moves it.
    pub kernel_stack_kib: u64,
    /// Threads on the machine, kernel threads included (`/proc/loadavg`, after the `/`),
    /// read with `kernel_stack_kib`: every one has a kernel stack.
    pub tasks: u64,
    /// Kernel slab memory, machine-wide (`Slab` in `/proc/meminfo`: reclaimable and not),
    /// KiB: task structs, sockets, open files, and whatever else the machine does.
    pub slab_kib: u64,
}

impl Footprint {
    /// The kernel stack of one thread, KiB: the machine's `KernelStack` over its threads.
    /// Every thread has one of the same size (`THREAD_SIZE`, 16 KiB on x86-64), so this
    /// holds however busy the machine is, where a difference of `KernelStack` does not.
    pub fn stack_per_thread_kib(&self) -> f64 {
        self.kernel_stack_kib as f64 / self.tasks.max(1) as f64
    }
}

/// Reads the footprint of process `pid`; `None` when it is gone.
pub fn footprint(pid: u32) -> Option<Footprint> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
    let loadavg = fs::read_to_string("/proc/loadavg").ok()?;
    let tasks = loadavg.split_whitespace().nth(3)?.split('/').nth(1)?;
    Some(Footprint {
        rss_kib: field(&status, "VmRSS:")?,
        threads: field(&status, "Threads:")?,
        fds: fd_count(pid)?,
        page_tables_kib: field(&status, "VmPTE:")?,
        kernel_stack_kib: field(&meminfo, "KernelStack:")?,
        tasks: tasks.parse().ok()?,
        slab_kib: field(&meminfo, "Slab:")?,
    })
}

/// Bytes of a thread's `task_struct` in the kernel's slab (`/proc/slabinfo`, readable by
/// root only); `None` when it cannot be read.
pub fn task_struct_bytes() -> Option<u64> {
    let slabinfo = fs::read_to_string("/proc/slabinfo").ok()?;
    let line = slabinfo.lines().find(|l| l.starts_with("task_struct "))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Open file descriptors of process `pid`; `None` when it is gone.
pub fn fd_count(pid: u32) -> Option<u64> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// The number after `name` on the line that starts with it (`VmRSS:   1234 kB` gives 1234).
fn field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_be_read() {
        let me = footprint(std::process::id()).expect("own /proc entry");
        assert!(me.rss_kib > 0 && me.threads >= 1 && me.fds >= 1);
        assert!(me.tasks >= me.threads && me.kernel_stack_kib > 0 && me.slab_kib > 0);
        let stack = me.stack_per_thread_kib();
        assert!(
            (4.0..=64.0).contains(&stack),
            "{stack} KiB of kernel stack per thread"
        );
        assert!(cpu_secs(None).is_some());
        assert_eq!(field("VmRSS:\t  1234 kB\n", "VmRSS:"), Some(1234));
    }
}
