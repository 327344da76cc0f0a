//! The distributed path's count tables: arbitrary bytes are an error or a table that serialises
//! back to the same bytes; tables built from arbitrary counts merge to the same result in any
//! order and tree (or all fail on an overflowing count); never a panic.
#![no_main]

use arbitrary::Arbitrary;
use bytepiece::table::{merge_serialised, NgramTable, PieceTable};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Input {
    Raw(Vec<u8>),
    Ngrams { order: u8, tables: Vec<Vec<(u8, u64, u64)>> },
    Pieces { tables: Vec<Vec<(Vec<u8>, u64)>> },
}

fn check_merges(serialised: &[Vec<u8>]) {
    let all: Vec<&[u8]> = serialised.iter().map(Vec::as_slice).collect();
    let flat = merge_serialised(&all, 0, "t");
    let reversed: Vec<&[u8]> = all.iter().rev().copied().collect();
    let (left, right) = all.split_at(all.len() / 2);
    let tree = match (merge_serialised(left, 0, "l"), merge_serialised(right, 0, "r")) {
        (Ok(l), Ok(r)) => merge_serialised(&[&l, &r], 0, "lr"),
        (Err(e), _) | (_, Err(e)) if left.is_empty() => Err(e),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    let rev = merge_serialised(&reversed, 0, "rev");
    match (&flat, &rev) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "merging in reverse order differs"),
        (Err(_), Err(_)) => {}
        _ => panic!("one order failed and the other did not: {flat:?} {rev:?}"),
    }
    if !left.is_empty() {
        match (&flat, &tree) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "merging as a tree differs"),
            (Err(_), Err(_)) => {}
            _ => panic!("the tree failed and the flat merge did not"),
        }
    }
}

fuzz_target!(|input: Input| match input {
    Input::Raw(bytes) => {
        let view = NgramTable::view(&bytes, "raw").and_then(|v| v.fingerprint());
        if let Ok(t) = NgramTable::from_bytes(&bytes, "raw") {
            assert_eq!(t.to_bytes(), bytes);
            // read in place, the table has the same fingerprint
            assert_eq!(view.ok(), Some(t.fingerprint()));
        }
        if let Ok(t) = PieceTable::from_bytes(&bytes, "raw") {
            assert_eq!(t.to_bytes(), bytes);
        }
    }
    Input::Ngrams { order, tables } => {
        let order = usize::from(order % 8) + 1;
        let serialised: Vec<Vec<u8>> = tables
            .into_iter()
            .take(6)
            .filter_map(|entries| {
                let mut lists = vec![Vec::new(); order];
                for (len, key, count) in entries {
                    let j = usize::from(len) % order;
                    let key = if j == 7 { key } else { key & ((1u64 << (8 * (j + 1))) - 1) };
                    lists[j].push((key, count.max(1)));
                }
                for l in &mut lists {
                    l.sort_unstable();
                    l.dedup_by_key(|e| e.0);
                }
                NgramTable::new(order, 7, 0, 100, lists).ok().map(|t| t.to_bytes())
            })
            .collect();
        if !serialised.is_empty() {
            check_merges(&serialised);
        }
    }
    Input::Pieces { tables } => {
        let serialised: Vec<Vec<u8>> = tables
            .into_iter()
            .take(6)
            .map(|entries| {
                let entries = entries.into_iter().filter(|(p, _)| !p.is_empty()).map(|(p, c)| (p, c.max(1))).collect();
                PieceTable::new(9, entries).to_bytes()
            })
            .collect();
        if !serialised.is_empty() {
            check_merges(&serialised);
        }
    }
});
