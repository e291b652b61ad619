//! A persistent thread pool with a low-latency fork/join `run`.
//!
//! Decoding one token of a small model issues a few hundred parallel
//! operations, each lasting microseconds, so spawning threads per operation or
//! parking after every one would dominate. Workers spin on a generation
//! counter for a short while after each job and only then park on a condvar.
//!
//! A job is cut into more tasks than there are threads, and tasks are taken
//! from a shared counter by whichever thread is running. The caller works
//! too and never waits for a worker that has not started: on a machine whose
//! cores are shared with other programs a descheduled worker then costs at
//! most the task it holds, not its whole share of every operation.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// The job of one generation, on the caller's stack.
struct JobRef<'a> {
    f: &'a (dyn Fn(usize, usize) + Sync),
    n_tasks: usize,
}

struct Shared {
    /// Bumped once per job; workers watch it.
    generation: AtomicU64,
    /// Whether the current generation's job may still be entered.
    open: AtomicBool,
    /// Workers inside the current job.
    active: AtomicUsize,
    job: AtomicPtr<()>,
    next_task: AtomicUsize,
    done_tasks: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
    shutdown: AtomicBool,
    /// The first panic of the current job's tasks, re-raised by `run` on
    /// the caller once no thread is inside the job any more.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

/// Spin iterations before a worker parks, or the caller starts yielding
/// (some tens of microseconds): long enough to bridge the gap between the
/// operations of one token, short enough not to steal a shared core.
const SPIN: u32 = 1 << 11;
/// Tasks per thread in one job of [`ThreadPool::run`]: two leave room to
/// take over from a descheduled thread, and every further one costs more on
/// short jobs (a task restarts its prefetch stream and its output tile;
/// decoding measured ~5 % faster with two than with four).
const TASKS_PER_THREAD: usize = 2;

/// Tasks per thread for long jobs ([`ThreadPool::run_rows`] over at least
/// [`LONG_JOB_ROWS`] rows): finer pieces even out threads that the machine
/// slows down unequally (prompt processing measured 3–10 % faster with
/// four than with two).
const LONG_TASKS_PER_THREAD: usize = 4;

/// Rows (tokens) from which a job counts as long: prompt processing rather
/// than decoding.
pub const LONG_JOB_ROWS: usize = 16;

pub struct ThreadPool {
    n_threads: usize,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Serialises concurrent callers of `run`.
    lock: Mutex<()>,
}

impl ThreadPool {
    /// A pool of `n_threads` (the caller counts as one, so `n_threads - 1`
    /// workers are started). `n_threads` is clamped to at least 1.
    pub fn new(n_threads: usize) -> ThreadPool {
        let n_threads = n_threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            open: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            next_task: AtomicUsize::new(0),
            done_tasks: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
            panic: Mutex::new(None),
        });
        let workers = (1..n_threads)
            .map(|i| {
                let s = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("hearth-worker-{i}"))
                    .spawn(move || worker(s))
                    .expect("spawning a worker thread")
            })
            .collect();
        ThreadPool {
            n_threads,
            shared,
            workers,
            lock: Mutex::new(()),
        }
    }

    pub fn n_threads(&self) -> usize {
        self.n_threads
    }

    /// Calls `f(task, n_tasks)` once for every task of `0..n_tasks` (a few
    /// per thread), spread over the pool's threads and the caller, and
    /// returns when all have returned. `f` splits its work with [`split`].
    ///
    /// A task that panics does not take its thread down or leave the job
    /// half-closed: the other tasks still run, and the panic is resumed here,
    /// on the caller, after every thread has left the job.
    pub fn run(&self, f: &(dyn Fn(usize, usize) + Sync)) {
        self.run_split(TASKS_PER_THREAD, f);
    }

    /// [`ThreadPool::run`] for a job over `rows` rows (tokens): one over
    /// [`LONG_JOB_ROWS`] or more (a prompt's products and attention) is cut
    /// finer, which balances better than it costs there.
    pub fn run_rows(&self, rows: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        let per_thread = if rows >= LONG_JOB_ROWS {
            LONG_TASKS_PER_THREAD
        } else {
            TASKS_PER_THREAD
        };
        self.run_split(per_thread, f);
    }

    fn run_split(&self, per_thread: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        // Callers on other threads (engines sharing the pool) take turns,
        // even on a one-thread pool, so they never use more cores than it has.
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.n_threads == 1 {
            f(0, 1);
            return;
        }
        let s = &*self.shared;
        let n_tasks = self.n_threads * per_thread;
        let job = JobRef { f, n_tasks };
        s.next_task.store(0, SeqCst);
        s.done_tasks.store(0, SeqCst);
        s.job.store(&job as *const JobRef<'_> as *mut (), SeqCst);
        s.open.store(true, SeqCst);
        {
            let _g = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
            s.generation.fetch_add(1, SeqCst);
        }
        s.wake.notify_all();
        run_tasks(s, &job);
        let mut spins = 0u32;
        while s.done_tasks.load(SeqCst) < n_tasks {
            spins += 1;
            if spins < SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        // Close the job and wait for workers still inside it (they find no
        // task left and leave) before `job` goes out of scope.
        s.open.store(false, SeqCst);
        while s.active.load(SeqCst) != 0 {
            std::hint::spin_loop();
        }
        s.job.store(std::ptr::null_mut(), SeqCst);
        let panic = s.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
    }
}

fn run_tasks(s: &Shared, job: &JobRef<'_>) {
    loop {
        let t = s.next_task.fetch_add(1, SeqCst);
        if t >= job.n_tasks {
            return;
        }
        let ran =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.f)(t, job.n_tasks)));
        if let Err(payload) = ran {
            let mut first = s.panic.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert(payload);
        }
        s.done_tasks.fetch_add(1, SeqCst);
    }
}

fn worker(s: Arc<Shared>) {
    let mut seen = 0u64;
    loop {
        // Wait for a new generation: spin, then park.
        let mut spins = 0u32;
        loop {
            if s.shutdown.load(SeqCst) {
                return;
            }
            let g = s.generation.load(SeqCst);
            if g != seen {
                seen = g;
                break;
            }
            spins += 1;
            if spins < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let guard = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
            if s.generation.load(SeqCst) == seen && !s.shutdown.load(SeqCst) {
                drop(s.wake.wait(guard).unwrap_or_else(|e| e.into_inner()));
            }
            spins = 0;
        }
        // Enter the job only while it is open; `run` waits for `active` to
        // drop to zero after closing it, so the job outlives every use.
        s.active.fetch_add(1, SeqCst);
        if s.open.load(SeqCst) && s.generation.load(SeqCst) == seen {
            let p = s.job.load(SeqCst) as *const JobRef<'static>;
            if !p.is_null() {
                // SAFETY: the job is open and this worker is counted in
                // `active`, so `run` has not returned and `*p` is alive.
                #[allow(unsafe_code)]
                let job = unsafe { &*p };
                run_tasks(&s, job);
            }
        }
        s.active.fetch_sub(1, SeqCst);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        {
            let _g = self.shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.shutdown.store(true, SeqCst);
        }
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The half-open range of `0..n` that thread `i` of `nt` works on.
pub fn split(n: usize, i: usize, nt: usize) -> std::ops::Range<usize> {
    let per = n.div_ceil(nt.max(1));
    let start = (i * per).min(n);
    start..((i + 1) * per).min(n)
}

/// A mutable slice shared among pool threads that write disjoint parts.
pub struct Disjoint<'a, T> {
    ptr: *mut T,
    len: usize,
    _life: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: access goes through `part`, whose contract requires disjoint ranges.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for Disjoint<'_, T> {}

impl<'a, T> Disjoint<'a, T> {
    pub fn new(s: &'a mut [T]) -> Self {
        Disjoint {
            ptr: s.as_mut_ptr(),
            len: s.len(),
            _life: std::marker::PhantomData,
        }
    }

    /// A mutable view of `range`.
    ///
    /// # Safety
    /// Ranges obtained concurrently must not overlap.
    #[allow(unsafe_code, clippy::mut_from_ref)]
    pub unsafe fn part(&self, range: std::ops::Range<usize>) -> &mut [T] {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "Disjoint::part out of bounds"
        );
        // SAFETY: in bounds (checked above); disjointness is the caller's contract.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.add(range.start), range.end - range.start)
        }
    }
}

impl Disjoint<'_, f32> {
    /// `rows` rows `ld` floats apart from `start`, the first `cols` of
    /// each, as a destination for [`Kernels::gemm_panel_to`](hearth_quant::Kernels::gemm_panel_to).
    ///
    /// # Safety
    /// Ranges obtained concurrently must not overlap, as for
    /// [`Disjoint::part`].
    ///
    /// # Panics
    /// When the last row's `cols` floats would pass the end, or `cols` is
    /// not 1 to 16, or `ld < cols`.
    #[allow(unsafe_code)]
    pub unsafe fn strided(
        &self,
        start: usize,
        ld: usize,
        rows: usize,
        cols: usize,
    ) -> hearth_quant::Strided<'_> {
        assert!(
            rows == 0 || start + (rows - 1) * ld + cols <= self.len,
            "Disjoint::strided out of bounds"
        );
        // SAFETY: in bounds (checked above; `Strided::new` checks cols and
        // ld); disjointness is the caller's contract.
        unsafe { hearth_quant::Strided::new(self.ptr.add(start), ld, rows, cols) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_task_runs_once_per_job() {
        let pool = ThreadPool::new(3);
        for _ in 0..2000 {
            let hits = AtomicUsize::new(0);
            let mask = AtomicUsize::new(0);
            pool.run(&|i, n| {
                assert_eq!(n, 3 * TASKS_PER_THREAD);
                hits.fetch_add(1, Ordering::Relaxed);
                mask.fetch_or(1 << i, Ordering::Relaxed);
            });
            assert_eq!(hits.load(Ordering::Relaxed), 3 * TASKS_PER_THREAD);
            assert_eq!(
                mask.load(Ordering::Relaxed),
                (1 << (3 * TASKS_PER_THREAD)) - 1
            );
        }
    }

    #[test]
    fn a_panicking_task_reaches_the_caller_and_the_pool_goes_on() {
        let pool = ThreadPool::new(2);
        for bad in 0..2 * TASKS_PER_THREAD {
            let ran = AtomicUsize::new(0);
            let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.run(&|i, _| {
                    ran.fetch_add(1, Ordering::Relaxed);
                    if i == bad {
                        panic!("task {i} fails");
                    }
                })
            }));
            let payload = got.expect_err("the panic is resumed on the caller");
            assert_eq!(
                payload.downcast_ref::<String>().map(String::as_str),
                Some(format!("task {bad} fails").as_str())
            );
            // The other tasks still ran, and the next job works.
            assert_eq!(ran.load(Ordering::Relaxed), 2 * TASKS_PER_THREAD);
            let hits = AtomicUsize::new(0);
            pool.run(&|_, _| {
                hits.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(hits.load(Ordering::Relaxed), 2 * TASKS_PER_THREAD);
        }
    }

    #[test]
    fn split_covers_everything() {
        for n in 0..20 {
            for nt in 1..5 {
                let total: usize = (0..nt).map(|i| split(n, i, nt).len()).sum();
                assert_eq!(total, n);
            }
        }
    }
}
