//! A persistent thread pool with a low-latency fork/join `run`.
//!
//! Decoding one token of a small model issues a few hundred parallel
//! operations, each lasting microseconds, so spawning threads per operation or
//! parking after every one would dominate. Workers spin on a generation
//! counter for a short while after each job and only then park on a condvar.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

type Job = dyn Fn(usize, usize) + Sync;

/// A type-erased pointer to the job of the current generation.
#[derive(Clone, Copy)]
struct JobPtr(*const Job);
// SAFETY: the pointee is `Sync`, and `run` keeps it alive until every worker
// has finished with it.
#[allow(unsafe_code)]
unsafe impl Send for JobPtr {}

struct Shared {
    generation: AtomicU64,
    pending: AtomicUsize,
    job: Mutex<Option<JobPtr>>,
    wake: Condvar,
    shutdown: std::sync::atomic::AtomicBool,
}

/// Spin iterations before a worker parks (a few tens of microseconds).
const SPIN: u32 = 1 << 14;

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
            pending: AtomicUsize::new(0),
            job: Mutex::new(None),
            wake: Condvar::new(),
            shutdown: std::sync::atomic::AtomicBool::new(false),
        });
        let workers = (1..n_threads)
            .map(|i| {
                let s = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("hearth-worker-{i}"))
                    .spawn(move || worker(s, i, n_threads))
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

    /// Calls `f(thread_index, n_threads)` once on every thread of the pool
    /// (the caller runs index 0) and returns when all calls have returned.
    pub fn run(&self, f: &(dyn Fn(usize, usize) + Sync)) {
        if self.n_threads == 1 {
            f(0, 1);
            return;
        }
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the job pointer is only dereferenced by workers between the
        // generation bump below and their decrement of `pending`; this
        // function does not return before `pending` reaches zero, so `f`
        // outlives every use.
        #[allow(unsafe_code)]
        let ptr: *const Job = unsafe {
            std::mem::transmute::<*const (dyn Fn(usize, usize) + Sync + '_), *const Job>(f)
        };
        {
            let mut job = self.shared.job.lock().unwrap_or_else(|e| e.into_inner());
            *job = Some(JobPtr(ptr));
            self.shared
                .pending
                .store(self.n_threads - 1, Ordering::Release);
            self.shared.generation.fetch_add(1, Ordering::AcqRel);
        }
        self.shared.wake.notify_all();
        f(0, self.n_threads);
        let mut spins = 0u32;
        while self.shared.pending.load(Ordering::Acquire) != 0 {
            spins += 1;
            if spins < SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

fn worker(s: Arc<Shared>, index: usize, n: usize) {
    let mut seen = 0u64;
    loop {
        // Wait for a new generation: spin, then park.
        let mut spins = 0u32;
        loop {
            if s.shutdown.load(Ordering::Acquire) {
                return;
            }
            let g = s.generation.load(Ordering::Acquire);
            if g != seen {
                seen = g;
                break;
            }
            spins += 1;
            if spins < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let job = s.job.lock().unwrap_or_else(|e| e.into_inner());
            if s.generation.load(Ordering::Acquire) == seen && !s.shutdown.load(Ordering::Acquire) {
                drop(s.wake.wait(job).unwrap_or_else(|e| e.into_inner()));
            }
            spins = 0;
        }
        let job = *s.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(JobPtr(p)) = job {
            // SAFETY: see `ThreadPool::run`: the job outlives this call.
            #[allow(unsafe_code)]
            let f = unsafe { &*p };
            f(index, n);
        }
        s.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        {
            let _job = self.shared.job.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.shutdown.store(true, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_thread_runs_once_per_job() {
        let pool = ThreadPool::new(3);
        for _ in 0..1000 {
            let hits = AtomicUsize::new(0);
            let mask = AtomicUsize::new(0);
            pool.run(&|i, n| {
                assert_eq!(n, 3);
                hits.fetch_add(1, Ordering::Relaxed);
                mask.fetch_or(1 << i, Ordering::Relaxed);
            });
            assert_eq!(hits.load(Ordering::Relaxed), 3);
            assert_eq!(mask.load(Ordering::Relaxed), 0b111);
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
