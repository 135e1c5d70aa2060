//! A memory budget for template threads.
//!
//! Fuel bounds how many instructions a template runs, not how much memory they take: doubling
//! a string forty times (`{% set ns.s = ns.s ~ ns.s %}` in a loop) is a few hundred
//! instructions and a terabyte. minijinja offers no hook on its string operations, and Rust
//! cannot recover from a failed allocation (it aborts the process), so the bound sits in the
//! allocator: a thread that renders a template counts the bytes it holds, and the allocation
//! that would cross its budget never happens. That thread instead raises its flag and sleeps
//! for good; the engine, which watches the flag, reports a template error and goes on. The
//! sleeping thread keeps at most its budget until the process exits.
//!
//! Every other thread (and a template thread outside [`capped`]) allocates exactly as
//! [`MiMalloc`] does; the cost is one thread-local read per allocation.
//!
//! Underneath is mimalloc rather than glibc's malloc: a wide fan-out allocates and frees
//! thousands of same-sized records at once, which overflow glibc's small per-thread caches, and
//! its bins then took a fifth of every branch's instructions (callgrind, 2000 branches: 424k
//! instructions per branch on glibc, 362k on mimalloc; docs/benchmarks.md). Built without its
//! transparent-huge-page advice (`no_thp`), which cost a one-step run a millisecond of start-up.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_long};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use mimalloc::MiMalloc;

/// Threads stopped for good by their budget, each holding up to its budget until exit.
static STOPPED: AtomicUsize = AtomicUsize::new(0);

/// How many template threads may be stopped before no new one starts: a loop whose every item
/// spends its budget (under `continue_on_error`) must not pile up 64 MiB per item.
pub const MAX_STOPPED: usize = 4;

/// Whether a new budgeted thread may start.
pub fn may_start() -> bool {
    STOPPED.load(Ordering::SeqCst) < MAX_STOPPED
}

/// The allocator of the whole program: [`MiMalloc`], with the budget of template threads.
pub struct Budgeted;

thread_local! {
    /// The bytes this thread may hold; 0 when it has no budget.
    static LIMIT: Cell<usize> = const { Cell::new(0) };
    /// The bytes it holds now: what it allocated less what it freed, never below 0.
    static HELD: Cell<isize> = const { Cell::new(0) };
    /// Raised when the budget is spent; the engine watches it.
    static FLAG: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// mimalloc.h's `mi_option_destroy_on_exit`. Its options are numbered for good (retired ones
/// keep their places as `deprecated_*`); a test checks this number against the option's name.
const MI_OPTION_DESTROY_ON_EXIT: c_int = 22;

unsafe extern "C" {
    /// In the mimalloc that `MiMalloc` links (libmimalloc-sys builds it whatever its features).
    fn mi_option_set(option: c_int, value: c_long);
    #[cfg(test)]
    fn mi_option_get(option: c_int) -> c_long;
}

/// Leaves the process's memory to the kernel at exit. By default mimalloc's exit handler
/// first collects every page of the main thread's heap and returns it to the OS, one
/// `madvise` at a time: after a 2000-wide fan-out ~8 ms spent after the last write, on the run's
/// wall time, for memory the kernel frees anyway (docs/benchmarks.md). `destroy_on_exit`
/// above 1 makes that handler return at once (`_mi_auto_process_done` in mimalloc's init.c).
pub fn leave_memory_to_the_kernel_at_exit() {
    // SAFETY: sets one of mimalloc's options; any value is valid and it is read only at exit.
    unsafe { mi_option_set(MI_OPTION_DESTROY_ON_EXIT, 2) }
}

/// Asks the kernel for transparent huge pages on the heap, for a run about to hold many
/// branches at once (`engine::join::prepare_heap`, from 256 branches at a time). mimalloc is
/// built without its own huge-page advice: it gives it when the heap is reserved, before the
/// program knows what it will run, and a one-step run paid 1.4 ms of start-up for it
/// (docs/benchmarks.md). A wide fan-out instead faults in tens of megabytes 4 KiB at a time on
/// its busiest thread: 17k page faults for 2000 branches, under 3k with huge pages, and 16–26 ms
/// less wall time. The advice covers the mapping that holds a fresh allocation, mimalloc's
/// reserved arena (an anonymous mapping of 1 GiB); it changes only the page size the kernel may
/// use there. Nothing changes where the kernel has no transparent huge pages, or where the
/// process has them turned off (`MIMALLOC_ALLOW_THP=0`, `prctl`).
#[cfg(target_os = "linux")]
pub fn advise_huge_pages_for_the_heap() {
    let probe = Box::new(0u64);
    let at = std::ptr::from_ref::<u64>(&probe).addr();
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    if let Some((start, end)) = maps.lines().find_map(|line| anonymous_mapping_at(line, at)) {
        // SAFETY: `MADV_HUGEPAGE` is advice on how the kernel may back the range (its page
        // size); the memory, its contents, its protection and who owns it are unchanged, and the
        // range is one whole mapping of this process, as `/proc/self/maps` listed it.
        unsafe {
            nix::libc::madvise(
                start as *mut nix::libc::c_void,
                end - start,
                nix::libc::MADV_HUGEPAGE,
            );
        }
    }
}

/// The bounds of the mapping of a `/proc/self/maps` line when it holds `address` and maps no
/// file (a heap's arena, not a library or the stack, which are named).
#[cfg(target_os = "linux")]
fn anonymous_mapping_at(line: &str, address: usize) -> Option<(usize, usize)> {
    let mut fields = line.split_ascii_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let (start, end) = (
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    );
    // Then permissions, offset, device and inode; a sixth field names what is mapped.
    let anonymous = fields.nth(3).is_some() && fields.next().is_none();
    (anonymous && (start..end).contains(&address)).then_some((start, end))
}

/// Runs `work` with this thread's allocations capped at `limit` bytes. When `work` would cross
/// the limit, `spent` is raised and this thread never returns.
pub fn capped<T>(limit: usize, spent: Arc<AtomicBool>, work: impl FnOnce() -> T) -> T {
    // Set up the flag before the budget: its first use may register a destructor.
    FLAG.with(|f| *f.borrow_mut() = Some(spent));
    HELD.with(|h| h.set(0));
    LIMIT.with(|l| l.set(limit));
    // Lifted even if `work` panics, so that the unwinding thread allocates freely.
    struct Lift;
    impl Drop for Lift {
        fn drop(&mut self) {
            let _ = LIMIT.try_with(|l| l.set(0));
        }
    }
    let _lift = Lift;
    work()
}

/// Counts `bytes` more held by this thread; past its budget, stops the thread for good.
fn charge(bytes: usize) {
    let Ok(limit) = LIMIT.try_with(Cell::get) else {
        return;
    };
    if limit == 0 {
        return;
    }
    let held = HELD.with(|h| {
        let held = h.get().saturating_add(bytes as isize);
        h.set(held);
        held
    });
    if held > limit as isize {
        // No further allocation is counted on this thread: raising the flag must not recurse.
        LIMIT.with(|l| l.set(0));
        let _ = FLAG.try_with(|f| {
            if let Ok(flag) = f.try_borrow()
                && let Some(flag) = flag.as_ref()
            {
                flag.store(true, Ordering::SeqCst);
            }
        });
        STOPPED.fetch_add(1, Ordering::SeqCst);
        // The allocation is refused by never returning; sleeping takes no lock and no memory.
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

fn credit(bytes: usize) {
    if LIMIT.try_with(Cell::get).is_ok_and(|l| l > 0) {
        // Memory from before this budget does not make room for more.
        HELD.with(|h| h.set(h.get().saturating_sub(bytes as isize).max(0)));
    }
}

// SAFETY: every call is forwarded to `MiMalloc` with the caller's arguments unchanged; the
// bookkeeping around it touches only const-initialised thread-locals of plain `Cell`s (no
// allocation, no lock) and a `RefCell` set up by `capped` before any budget applies, and it
// never unwinds.
unsafe impl GlobalAlloc for Budgeted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        charge(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        charge(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        credit(layout.size());
        // SAFETY: `ptr` came from `MiMalloc` through this allocator, with this layout.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            charge(new_size - layout.size());
        } else {
            credit(layout.size() - new_size);
        }
        // SAFETY: as for `dealloc`; `new_size` is the caller's, unchanged.
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mimalloc reads `MIMALLOC_DESTROY_ON_EXIT` into the option of that name the first time
    /// the option is read; in a process started with it, [`MI_OPTION_DESTROY_ON_EXIT`] reads
    /// its value only if the number is that option's.
    #[test]
    fn the_exit_option_is_the_one_mimalloc_names_destroy_on_exit() {
        const PROBE: &str = "AGENTRACE_TEST_MIMALLOC_PROBE";
        // SAFETY: reads an option; any number below the options' count is valid.
        let read = || unsafe { mi_option_get(MI_OPTION_DESTROY_ON_EXIT) };
        if std::env::var_os(PROBE).is_some() {
            println!("option={}", read());
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "workflow::budget::tests::the_exit_option_is_the_one_mimalloc_names_destroy_on_exit",
                "--nocapture",
            ])
            .env(PROBE, "1")
            .env("MIMALLOC_DESTROY_ON_EXIT", "7")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("option=7"), "{text}");
        leave_memory_to_the_kernel_at_exit();
        assert_eq!(read(), 2);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_an_anonymous_mapping_that_holds_the_address_is_advised() {
        let arena = "386ac000000-386ec000000 rw-p 00000000 00:00 0";
        let at = 0x386ac000000 + 4096;
        assert_eq!(
            anonymous_mapping_at(arena, at),
            Some((0x386ac000000, 0x386ec000000))
        );
        assert_eq!(
            anonymous_mapping_at(arena, 0x386ec000000),
            None,
            "end excluded"
        );
        assert_eq!(anonymous_mapping_at(arena, 0x386ac000000 - 1), None);
        let named = "386ac000000-386ec000000 rw-p 00000000 00:00 0                          [heap]";
        assert_eq!(anonymous_mapping_at(named, at), None);
        let file = "560dc33ec000-560dc49a7000 r-xp 0072c000 fe:00 1234 /usr/bin/agentrace";
        assert_eq!(anonymous_mapping_at(file, 0x560dc33ec000), None);
        assert_eq!(anonymous_mapping_at("garbage", at), None);
        assert_eq!(anonymous_mapping_at("", at), None);
    }

    #[test]
    fn a_thread_past_its_budget_raises_its_flag_and_stops() {
        let spent = Arc::new(AtomicBool::new(false));
        let flag = spent.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let n = capped(1 << 20, flag, || {
                let mut s = String::from("x");
                for _ in 0..40 {
                    s = format!("{s}{s}");
                }
                s.len()
            });
            let _ = tx.send(n);
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !spent.load(Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "the flag was never raised"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
    }

    #[test]
    fn within_its_budget_a_thread_runs_as_usual() {
        let spent = Arc::new(AtomicBool::new(false));
        let n = capped(1 << 20, spent.clone(), || {
            // Much more than the budget in total, never more than a little at once.
            (0..1000).map(|_| vec![0u8; 64 << 10].len()).sum::<usize>()
        });
        assert_eq!(n, 1000 * (64 << 10));
        assert!(!spent.load(Ordering::SeqCst));
    }
}
