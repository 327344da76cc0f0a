//! The k-way merge of sorted `(key, count)` sources that sums the counts of equal keys: how runs
//! on disk ([`crate::runs`]) and serialised count tables ([`crate::table`]) are merged, in one
//! streaming pass over their records.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::error::{Error, Result};

/// A source of `(key, count)` records by increasing key.
pub trait Source {
    /// The key of a record.
    type Key: Ord;
    /// The next record, `None` at the end.
    fn next_record(&mut self) -> Result<Option<(Self::Key, u64)>>;
}

/// Merges `sources`, calling `f(key, total count)` once per key, by increasing key. A sum past
/// `u64::MAX` is an error (real counts never get there).
pub fn merge<S: Source>(mut sources: Vec<S>, mut f: impl FnMut(S::Key, u64) -> Result<()>) -> Result<()> {
    let mut heap = BinaryHeap::with_capacity(sources.len());
    for (i, s) in sources.iter_mut().enumerate() {
        if let Some((k, c)) = s.next_record()? {
            heap.push(Reverse((k, i, c)));
        }
    }
    let mut current: Option<(S::Key, u64)> = None;
    while let Some(Reverse((k, i, c))) = heap.pop() {
        if let Some((nk, nc)) = sources[i].next_record()? {
            heap.push(Reverse((nk, i, nc)));
        }
        current = match current {
            Some((ck, cc)) if ck == k => Some((ck, cc.checked_add(c).ok_or_else(overflow)?)),
            Some((ck, cc)) => {
                f(ck, cc)?;
                Some((k, c))
            }
            None => Some((k, c)),
        };
    }
    match current {
        Some((k, c)) => f(k, c),
        None => Ok(()),
    }
}

/// The error of counts that sum past `u64::MAX`.
pub(crate) fn overflow() -> Error {
    Error::InvalidArgument("counts sum past 2^64 - 1: they cannot be real counts".into())
}

/// Sums two lists sorted by strictly increasing keys into one; a sum past `u64::MAX` (only
/// possible from forged tables) is an error.
pub(crate) fn merge_sorted<K: Ord>(a: Vec<(K, u64)>, b: Vec<(K, u64)>) -> Result<Vec<(K, u64)>> {
    if a.is_empty() || b.is_empty() {
        return Ok(if a.is_empty() { b } else { a });
    }
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match x.0.cmp(&y.0) {
                std::cmp::Ordering::Less => a.next(),
                std::cmp::Ordering::Greater => b.next(),
                std::cmp::Ordering::Equal => {
                    let (k, c) = a.next().unwrap_or_else(|| unreachable!());
                    let (_, d) = b.next().unwrap_or_else(|| unreachable!());
                    Some((k, c.checked_add(d).ok_or_else(overflow)?))
                }
            },
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => return Ok(out),
        };
        out.extend(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct List<'a>(std::slice::Iter<'a, (u32, u64)>);

    impl Source for List<'_> {
        type Key = u32;
        fn next_record(&mut self) -> Result<Option<(u32, u64)>> {
            Ok(self.0.next().copied())
        }
    }

    fn merged(lists: &[&[(u32, u64)]]) -> Result<Vec<(u32, u64)>> {
        let mut out = vec![];
        merge(lists.iter().map(|l| List(l.iter())).collect(), |k, c| {
            out.push((k, c));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn equal_keys_are_summed_in_key_order() {
        let got = merged(&[&[(1, 1), (5, 2)], &[], &[(1, 3), (2, 1), (9, 1)], &[(5, 5)]]).unwrap();
        assert_eq!(got, [(1, 4), (2, 1), (5, 7), (9, 1)]);
        assert_eq!(merged(&[]).unwrap(), []);
    }

    #[test]
    fn a_sum_past_u64_max_is_an_error() {
        let err = merged(&[&[(1, u64::MAX)], &[(1, 1)]]).unwrap_err();
        assert!(err.to_string().contains("2^64"), "{err}");
    }
}
