//! `eval --shard K/N`: which cases shard K of N runs. A case belongs to the shard its id hashes
//! to (SHA-256 of the id, taken modulo N), never to one chosen by its position: adding or
//! removing a case moves no other case to another shard, and every repeat of a case runs in
//! the same shard, so that N machines that share nothing but the dataset run each case once.

use std::fmt;

use sha2::{Digest, Sha256};

/// Shard `index` (1-based) of `total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub total: u32,
}

impl Shard {
    /// `K/N` with `N >= 1` and `1 <= K <= N`; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("expected K/N (shard K of N, e.g. 2/4), got `{s}`");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let total: u32 = n.trim().parse().map_err(|_| bad())?;
        if total == 0 {
            return Err(format!("`{s}`: the number of shards must be at least 1"));
        }
        if index == 0 || index > total {
            return Err(format!("`{s}`: the shard must be between 1 and {total}"));
        }
        Ok(Shard { index, total })
    }

    /// Whether the case `id` is this shard's.
    pub fn holds(&self, case_id: &str) -> bool {
        shard_of(case_id, self.total) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

/// The shard (1-based) of `total` that the case `id` belongs to.
pub fn shard_of(case_id: &str, total: u32) -> u32 {
    let digest = Sha256::digest(case_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let n = u64::from_be_bytes(first) % u64::from(total.max(1));
    // `n < total`, which fits a u32.
    u32::try_from(n).unwrap_or(0) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_of_n_is_checked() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, total: 4 }));
        assert_eq!(Shard::parse("1/1").map(|s| s.to_string()), Ok("1/1".into()));
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", "-1/4", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_case_is_in_exactly_one_shard_and_stays_there() {
        let ids: Vec<String> = (0..1000).map(|i| format!("case-{i}")).collect();
        let shards: Vec<Shard> = (1..=4).map(|k| Shard { index: k, total: 4 }).collect();
        let mut sizes = [0usize; 4];
        for id in &ids {
            let holders: Vec<usize> = (0..4).filter(|&k| shards[k].holds(id)).collect();
            assert_eq!(holders.len(), 1, "{id}");
            sizes[holders[0]] += 1;
        }
        // Near a quarter each.
        assert!(sizes.iter().all(|&n| (200..300).contains(&n)), "{sizes:?}");
        // A fixed value: the hash must not change between versions, or the shards of one
        // experiment run by two versions would overlap.
        let fixed: Vec<u32> = ["case-0", "c1", "c2", "c3"]
            .iter()
            .map(|id| shard_of(id, 4))
            .collect();
        assert_eq!(fixed, [4, 4, 2, 3]);
        assert_eq!(shard_of("x", 1), 1);
    }
}
