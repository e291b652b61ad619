//! Row-wise work spread over the pool: each task gets whole rows, so every
//! row is computed exactly as a one-thread loop computes it (the results do
//! not depend on the thread count).

use crate::pool::{split, Disjoint, ThreadPool};

/// Elements (of both buffers) from which row work is spread over the pool:
/// below (one short text, a decode step), a fork and join, and on a busy
/// machine the wait for the other threads, costs more than the rows.
const MIN_PARALLEL: usize = 1 << 15;

/// `f(a_rows, b_rows)` over matching runs of whole rows of `a` and `b`
/// (rows of `a_len` and `b_len` elements, the same number of rows in both),
/// one run per pool task; all on this thread when there are few elements.
pub fn rows_par2(
    pool: &ThreadPool,
    (a, a_len): (&mut [f32], usize),
    (b, b_len): (&mut [f32], usize),
    f: &(dyn Fn(&mut [f32], &mut [f32]) + Sync),
) {
    let rows = a.len() / a_len.max(1);
    assert_eq!(a.len(), rows * a_len, "rows_par2: a is not whole rows");
    assert_eq!(b.len(), rows * b_len, "rows_par2: b has other rows than a");
    if rows < 2 || a.len() + b.len() < MIN_PARALLEL || pool.n_threads() < 2 {
        return f(a, b);
    }
    let (da, db) = (Disjoint::new(a), Disjoint::new(b));
    pool.run(&|i, nt| {
        let r = split(rows, i, nt);
        if r.is_empty() {
            return;
        }
        // SAFETY: each task owns the rows `split` gives it, in both buffers.
        #[allow(unsafe_code)]
        let (pa, pb) = unsafe {
            (
                da.part(r.start * a_len..r.end * a_len),
                db.part(r.start * b_len..r.end * b_len),
            )
        };
        f(pa, pb);
    });
}

/// `f(rows, first_row)` over runs of whole rows of `x` (rows of `n`
/// elements), one run per pool task, with the index of the run's first
/// row; all on this thread when there are few elements.
pub fn rows_par<T: Send>(
    pool: &ThreadPool,
    x: &mut [T],
    n: usize,
    f: &(dyn Fn(&mut [T], usize) + Sync),
) {
    assert!(n > 0 && x.len().is_multiple_of(n), "rows_par: shape");
    let rows = x.len() / n;
    if rows < 2 || x.len() < MIN_PARALLEL || pool.n_threads() < 2 {
        return f(x, 0);
    }
    let g = Disjoint::new(x);
    pool.run(&|i, nt| {
        let r = split(rows, i, nt);
        if r.is_empty() {
            return;
        }
        // SAFETY: each task owns the rows `split` gives it.
        #[allow(unsafe_code)]
        let part = unsafe { g.part(r.start * n..r.end * n) };
        f(part, r.start);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_visited_once_with_its_partner() {
        for threads in [1, 2, 3] {
            let pool = ThreadPool::new(threads);
            for rows in [0, 1, 2, 7, 64, 301, 900] {
                let (al, bl) = (40, 24);
                let mut a: Vec<f32> = (0..rows * al).map(|i| (i / al) as f32).collect();
                let mut b: Vec<f32> = (0..rows * bl).map(|i| (i / bl) as f32).collect();
                rows_par2(&pool, (&mut a, al), (&mut b, bl), &|a, b| {
                    assert_eq!(a.len() / al, b.len() / bl);
                    for (ra, rb) in a.chunks_exact_mut(al).zip(b.chunks_exact_mut(bl)) {
                        assert_eq!(ra[0], rb[0], "a task got rows that do not match");
                        ra.iter_mut().for_each(|v| *v += 1000.0);
                        rb.iter_mut().for_each(|v| *v = -*v);
                    }
                });
                assert!(a
                    .iter()
                    .enumerate()
                    .all(|(i, &v)| v == (i / al) as f32 + 1000.0));
                assert!(b.iter().enumerate().all(|(i, &v)| v == -((i / bl) as f32)));
                rows_par(&pool, &mut a, al, &|x, first| {
                    if let Some(&v) = x.first() {
                        assert_eq!(v, first as f32 + 1000.0, "a task's first row");
                    }
                    x.iter_mut().for_each(|v| *v -= 1000.0)
                });
                assert!(a.iter().enumerate().all(|(i, &v)| v == (i / al) as f32));
            }
        }
    }

    #[test]
    #[should_panic(expected = "other rows")]
    fn mismatched_buffers_are_refused() {
        let pool = ThreadPool::new(2);
        let (mut a, mut b) = (vec![0.0; 8], vec![0.0; 6]);
        rows_par2(&pool, (&mut a, 4), (&mut b, 4), &|_, _| {});
    }
}
