//! Does every replica serve what its place in `SEMSEARCH_ROUTER_SHARDS`
//! says? Checked at start and on every `/readyz`.
//!
//! Each replica answers `GET /v1/shard/info` (`query::shard::ShardInfo`):
//! its `SEMSEARCH_SHARD` (index and count), its embedding key prefix (the
//! key space whose hash slots place ids) and its dimension. A list that
//! names a shard twice, lists shards out of order or includes an unsharded
//! node, a shard count or key space other than the router's, shards of
//! different dimensions, or a shard refusing the router's key: each would
//! otherwise give repeated ids, 404s for existing documents, wrong counts
//! or 401s while `/readyz` said 200. Any of them makes the router not ready
//! (503 `shard_misconfigured`, the reason naming shard and replica by their
//! place in the list; URLs only in the log), and a replica that serves
//! something else than its place is not called until a check passes again
//! (`shards::Replica::is_misplaced`).
//!
//! [`judge`] is pure: what each replica answered in, the verdict out.
//! [`Checks`] runs one check at a time; probes arriving during a check
//! share its verdict rather than start another (an open route must not
//! multiply the router's calls).

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Mutex,
};

use bytes::Bytes;
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use tracing::{debug, info, warn};

use super::{
    decode::info_answer,
    shards::{key_refused, Answer, CheckChange, ShardFailure, Shards},
};
use crate::{problem::ApiError, query::shard::ShardInfo};

/// What one replica answered `GET /v1/shard/info`.
#[derive(Debug, Clone)]
pub enum Probe {
    Info(ShardInfo),
    /// 401 or 403: the router's key does not fit.
    Refused(StatusCode),
    /// No usable answer (down, not ready, a bad body): says nothing about
    /// the configuration.
    Failed(String),
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListVerdict {
    /// No check has finished yet.
    Unchecked,
    /// Every shard has a replica that answered, and every replica that
    /// answered is what the list says.
    Ready,
    /// Some shard has no replica that answered (none refused or misplaced).
    Unavailable { shard: usize, replicas: usize },
    /// What to fix, every problem found, `; `-separated.
    Misconfigured {
        why: String,
        /// The shards hold vectors of different dimensions: no query vector
        /// fits them all, so searches are refused until a check passes.
        dimensions_disagree: bool,
    },
}

impl ListVerdict {
    /// `/readyz`'s answer for this verdict.
    ///
    /// # Errors
    /// `shard_unavailable` or `shard_misconfigured`; `not_ready` before the
    /// first check.
    pub fn ready(&self) -> Result<(), ApiError> {
        match self {
            Self::Ready => Ok(()),
            Self::Unchecked => Err(ApiError::NotReady("the shards have not been checked yet".into())),
            Self::Unavailable { shard, replicas } => {
                Err(ApiError::ShardUnavailable { shard: *shard, replicas: *replicas })
            }
            Self::Misconfigured { why, .. } => Err(ApiError::ShardMisconfigured(why.clone())),
        }
    }

    /// Whether a search may go to the shards under this verdict. Every
    /// other problem is kept away from searches by not calling the replicas
    /// it concerns (misplaced or refusing ones fail over, or the call says
    /// which shard is misconfigured); shards of different dimensions would
    /// each answer "wrong dimension" about a question that is not wrong.
    ///
    /// # Errors
    /// `shard_misconfigured` naming the dimensions.
    pub fn searchable(&self) -> Result<(), ApiError> {
        match self {
            Self::Misconfigured { why, dimensions_disagree: true } => Err(ApiError::ShardMisconfigured(why.clone())),
            _ => Ok(()),
        }
    }
}

/// The verdict on what every replica answered (`probes[shard][replica]`)
/// and, per replica, whether it is misplaced; `prefix` is the router's
/// embedding key prefix.
pub fn judge(prefix: &str, probes: &[Vec<Probe>]) -> (ListVerdict, Vec<Vec<bool>>) {
    let n = probes.len();
    let mut problems: Vec<String> = Vec::new();
    let mut misplaced: Vec<Vec<bool>> = probes.iter().map(|r| vec![false; r.len()]).collect();
    let place = |shard: usize, replica: usize| format!("shard {shard} replica {}", replica + 1);
    // Where each served shard index was found, to name a shard listed twice.
    let mut served_at: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut dimensions: Vec<(usize, usize)> = Vec::new();
    for (shard, replicas) in probes.iter().enumerate() {
        for (r, probe) in replicas.iter().enumerate() {
            let info = match probe {
                Probe::Info(info) => info,
                Probe::Refused(status) => {
                    problems.push(key_refused(&place(shard, r), *status));
                    continue;
                }
                Probe::Failed(_) => continue,
            };
            let mut wrong = |what: String| {
                problems.push(format!("{} {what}", place(shard, r)));
                misplaced[shard][r] = true;
            };
            match info.shard {
                None if n > 1 => {
                    wrong(format!("is an unsharded node (no SEMSEARCH_SHARD), but the router lists {n} shards"))
                }
                None => {}
                Some(p) if usize::from(p.count) != n => {
                    wrong(format!("serves shard {}/{}, but the router lists {n} shards", p.index, p.count))
                }
                Some(p) if usize::from(p.index) != shard => {
                    if let Some(at) = served_at.get_mut(usize::from(p.index)) {
                        at.push(shard);
                    }
                    wrong(format!(
                        "serves shard {}/{}: SEMSEARCH_ROUTER_SHARDS must list the shards in order, each once",
                        p.index, p.count
                    ));
                }
                Some(_) => served_at[shard].push(shard),
            }
            if info.embedding_prefix != prefix {
                wrong("keeps documents under another key prefix than the router (SEMSEARCH_EMBEDDING_PATTERN), so ids would be placed on the wrong shards".to_owned());
            }
            if info.documents > 0 && !misplaced[shard][r] {
                dimensions.push((shard, info.dimension));
            }
        }
    }
    for (index, at) in served_at.iter().enumerate() {
        let mut places: Vec<usize> = at.clone();
        places.dedup();
        if places.len() > 1 {
            let list = places.iter().map(usize::to_string).collect::<Vec<_>>().join(" and ");
            problems.push(format!("shard {index}/{n} is listed at positions {list}"));
        }
    }
    let mut dimensions_disagree = false;
    if let Some(&(first_shard, dim)) = dimensions.first() {
        if let Some(&(other, other_dim)) = dimensions.iter().find(|(_, d)| *d != dim) {
            dimensions_disagree = true;
            problems.push(format!(
                "the shards disagree on the dimension: shard {first_shard} holds {dim}-dimensional vectors, shard {other} {other_dim}"
            ));
        }
    }
    if !problems.is_empty() {
        return (ListVerdict::Misconfigured { why: problems.join("; "), dimensions_disagree }, misplaced);
    }
    for (shard, replicas) in probes.iter().enumerate() {
        if !replicas.iter().any(|p| matches!(p, Probe::Info(_))) {
            return (ListVerdict::Unavailable { shard, replicas: replicas.len() }, misplaced);
        }
    }
    (ListVerdict::Ready, misplaced)
}

/// The last verdict, and one check at a time.
#[derive(Debug)]
pub struct Checks {
    last: Mutex<ListVerdict>,
    /// Held while a check runs.
    running: tokio::sync::Mutex<()>,
    /// Checks finished so far.
    finished: AtomicU64,
    /// Whether the last verdict refuses searches (see [`ListVerdict::searchable`]).
    blocks_searches: AtomicBool,
}

impl Default for Checks {
    fn default() -> Self {
        Self {
            last: Mutex::new(ListVerdict::Unchecked),
            running: tokio::sync::Mutex::new(()),
            finished: AtomicU64::new(0),
            blocks_searches: AtomicBool::new(false),
        }
    }
}

impl Checks {
    pub fn last(&self) -> ListVerdict {
        self.last.lock().map_or(ListVerdict::Unchecked, |v| v.clone())
    }

    /// [`ListVerdict::searchable`] of the last verdict, without copying it.
    ///
    /// # Errors
    /// As [`ListVerdict::searchable`].
    pub fn searchable(&self) -> Result<(), ApiError> {
        // Every search asks; the lock is taken only when the answer is no.
        if !self.blocks_searches.load(Ordering::Acquire) {
            return Ok(());
        }
        self.last.lock().map_or(Ok(()), |v| v.searchable())
    }

    /// Probes every replica and judges, unless a check finished while this
    /// one waited for the running one: then that verdict is the answer.
    pub async fn check(&self, shards: &Shards, prefix: &str) -> ListVerdict {
        let seen = self.finished.load(Ordering::Acquire);
        let _running = self.running.lock().await;
        if self.finished.load(Ordering::Acquire) != seen {
            return self.last();
        }
        let probes = join_all(shards.groups.iter().map(|group| {
            join_all(group.replicas.iter().map(|replica| async move {
                let got = shards.attempt(replica, Method::GET, "/v1/shard/info", None::<Bytes>, info_answer).await;
                match got {
                    Ok((Answer::Body(info), _)) => Probe::Info(info),
                    Ok((Answer::Problem(p), _)) => Probe::Failed(format!("answered {} {}", p.status, p.code.as_str())),
                    Err(ShardFailure::Refused(status)) => Probe::Refused(status),
                    Err(failure) => Probe::Failed(failure.to_string()),
                }
            }))
        }))
        .await;
        let (verdict, misplaced) = judge(prefix, &probes);
        for ((group, flags), answers) in shards.groups.iter().zip(&misplaced).zip(&probes) {
            for ((replica, &flag), probe) in group.replicas.iter().zip(flags).zip(answers) {
                replica.set_misplaced(flag);
                let failed = match probe {
                    Probe::Failed(why) => Some(why),
                    _ => None,
                };
                match (replica.note_check(failed.is_some()), failed) {
                    (CheckChange::Fails, Some(why)) => {
                        warn!(replica = %replica.base, reason = %why, "shard check: no usable answer from the replica")
                    }
                    (CheckChange::Recovers, _) => {
                        info!(replica = %replica.base, "shard check: the replica answers again")
                    }
                    (_, Some(why)) => {
                        debug!(replica = %replica.base, reason = %why, "shard check: the replica still gives no usable answer")
                    }
                    _ => {}
                }
            }
        }
        let previous = self.last();
        if previous != verdict {
            match &verdict {
                ListVerdict::Ready => {
                    info!(shards = shards.count(), "shard check passed: every shard is what the list says")
                }
                ListVerdict::Misconfigured { why, .. } => {
                    warn!(reason = %why, "shard check: the router's shards are misconfigured")
                }
                ListVerdict::Unavailable { shard, .. } => warn!(shard, "shard check: a shard has no replica answering"),
                ListVerdict::Unchecked => {}
            }
        }
        if let Ok(mut last) = self.last.lock() {
            *last = verdict.clone();
            self.blocks_searches.store(verdict.searchable().is_err(), Ordering::Release);
        }
        self.finished.fetch_add(1, Ordering::Release);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::shard::ShardPart;

    fn info(shard: Option<(u16, u16)>) -> Probe {
        Probe::Info(ShardInfo {
            version: "0".into(),
            shard: shard.map(|(index, count)| ShardPart { index, count }),
            embedding_prefix: "p:".into(),
            documents: 10,
            dimension: 4,
        })
    }

    fn verdict(probes: Vec<Vec<Probe>>) -> ListVerdict {
        judge("p:", &probes).0
    }

    #[test]
    fn shards_in_order_are_ready_and_a_down_replica_is_not_a_misconfiguration() {
        let probes = vec![vec![info(Some((0, 2))), Probe::Failed("down".into())], vec![info(Some((1, 2)))]];
        assert_eq!(verdict(probes), ListVerdict::Ready);
        assert_eq!(verdict(vec![vec![info(None)]]), ListVerdict::Ready, "one unsharded node is a list of one shard");
        let none = vec![vec![info(Some((0, 2)))], vec![Probe::Failed("down".into())]];
        assert_eq!(verdict(none), ListVerdict::Unavailable { shard: 1, replicas: 1 });
    }

    #[test]
    fn every_misconfiguration_is_named() {
        let cases: Vec<(Vec<Vec<Probe>>, &str)> = vec![
            (vec![vec![info(Some((1, 2)))], vec![info(Some((0, 2)))]], "in order"),
            (vec![vec![info(Some((0, 2)))], vec![info(Some((0, 2)))]], "listed at positions 0 and 1"),
            (vec![vec![info(Some((0, 2)))], vec![info(None)]], "unsharded"),
            (vec![vec![info(Some((0, 3)))], vec![info(Some((1, 3)))]], "the router lists 2 shards"),
            (
                vec![vec![info(Some((0, 2)))], vec![Probe::Refused(StatusCode::UNAUTHORIZED)]],
                "SEMSEARCH_ROUTER_SHARD_API_KEY",
            ),
        ];
        for (probes, says) in cases {
            let v = verdict(probes);
            assert!(matches!(&v, ListVerdict::Misconfigured { why, .. } if why.contains(says)), "{says}: {v:?}");
        }
        let mut other_prefix = info(Some((1, 2)));
        if let Probe::Info(i) = &mut other_prefix {
            i.embedding_prefix = "q:".into();
        }
        let (v, misplaced) = judge("p:", &[vec![info(Some((0, 2)))], vec![other_prefix]]);
        assert!(matches!(&v, ListVerdict::Misconfigured { why, .. } if why.contains("key prefix")), "{v:?}");
        assert_eq!(misplaced, vec![vec![false], vec![true]]);
        let mut other_dim = info(Some((1, 2)));
        if let Probe::Info(i) = &mut other_dim {
            i.dimension = 3;
        }
        let v = verdict(vec![vec![info(Some((0, 2)))], vec![other_dim]]);
        assert!(matches!(&v, ListVerdict::Misconfigured { why, .. } if why.contains("dimension")), "{v:?}");
    }

    #[test]
    fn searches_are_refused_while_the_shards_disagree_on_the_dimension_and_only_then() {
        // Arrange
        let mut other_dim = info(Some((1, 2)));
        if let Probe::Info(i) = &mut other_dim {
            i.dimension = 3;
        }
        let mut other_prefix = info(Some((1, 2)));
        if let Probe::Info(i) = &mut other_prefix {
            i.embedding_prefix = "q:".into();
        }

        // Act
        let (dims, _) = judge("p:", &[vec![info(Some((0, 2)))], vec![other_dim]]);
        let (prefix, _) = judge("p:", &[vec![info(Some((0, 2)))], vec![info(Some((1, 2))), other_prefix]]);
        let (ready, _) = judge("p:", &[vec![info(Some((0, 2)))], vec![info(Some((1, 2)))]]);

        // Assert: 503 shard_misconfigured naming the dimensions, not a 422 from each shard.
        let err = dims.searchable().expect_err("no question fits shards of 4 and 3 dimensions");
        assert!(matches!(&err, ApiError::ShardMisconfigured(why) if why.contains("dimension")), "{err:?}");
        assert!(prefix.searchable().is_ok(), "the misplaced replica is passed over; its shard has another");
        assert!(ready.searchable().is_ok() && ListVerdict::Unchecked.searchable().is_ok());
    }
}
