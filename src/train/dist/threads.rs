//! Ranks as threads of one process, meeting at a shared hub (unit tests of the data-parallel
//! path without processes or sockets). Each call is an exchange: every rank deposits its
//! bytes, the last to arrive publishes them all, and each rank takes what its operation needs.
//! Sums are added in rank order, as the TCP star does.
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use candle_core::Tensor;

use super::frame::Op;
use super::{f32_bytes, f32_values, sum_in_rank_order, Collective, DistError};

/// Each rank's operation and bytes, in rank order.
type Deposits = Vec<(Op, Vec<u8>)>;

/// Where the ranks of one process meet.
pub struct ThreadHub {
    world: usize,
    timeout: Duration,
    state: Mutex<HubState>,
    ready: Condvar,
}

struct HubState {
    /// Exchanges completed so far.
    generation: u64,
    /// This exchange's deposits by rank.
    deposits: Vec<Option<(Op, Vec<u8>)>>,
    /// The last completed exchange's deposits, in rank order.
    published: Arc<Deposits>,
    /// Set when a rank stopped: (rank, why).
    failed: Option<(usize, String)>,
}

impl ThreadHub {
    /// A hub for `world` ranks whose waits end after `timeout`.
    pub fn new(world: usize, timeout: Duration) -> Arc<ThreadHub> {
        Arc::new(ThreadHub {
            world,
            timeout,
            state: Mutex::new(HubState {
                generation: 0,
                deposits: vec![None; world],
                published: Arc::new(Vec::new()),
                failed: None,
            }),
            ready: Condvar::new(),
        })
    }

    /// Rank `rank`'s end (one per rank, each moved to its thread).
    pub fn join(self: &Arc<Self>, rank: usize) -> ThreadCollective {
        assert!(
            rank < self.world,
            "rank {rank} outside a world of {}",
            self.world
        );
        ThreadCollective {
            hub: self.clone(),
            rank,
        }
    }

    fn fail(&self, rank: usize, message: String) {
        if let Ok(mut s) = self.state.lock() {
            s.failed.get_or_insert((rank, message));
        }
        self.ready.notify_all();
    }
}

/// One rank's end of a [`ThreadHub`]. Dropping it (the rank's thread ended, or failed) makes
/// the other ranks' next call fail.
pub struct ThreadCollective {
    hub: Arc<ThreadHub>,
    rank: usize,
}

impl ThreadCollective {
    /// Deposits `bytes` for `op` and returns every rank's deposit once all have arrived.
    fn exchange(&mut self, op: Op, bytes: Vec<u8>) -> Result<Arc<Deposits>, DistError> {
        let hub = &self.hub;
        let poisoned = || DistError::Mismatch("a rank's thread panicked".into());
        let mut s = hub.state.lock().map_err(|_| poisoned())?;
        if let Some((rank, message)) = &s.failed {
            return Err(DistError::Aborted {
                rank: *rank,
                message: message.clone(),
            });
        }
        s.deposits[self.rank] = Some((op, bytes));
        if s.deposits.iter().all(Option::is_some) {
            let all: Vec<(Op, Vec<u8>)> = s.deposits.iter_mut().filter_map(Option::take).collect();
            s.published = Arc::new(all);
            s.generation += 1;
            hub.ready.notify_all();
        } else {
            let (mine, deadline) = (s.generation, Instant::now() + hub.timeout);
            while s.generation == mine {
                if let Some((rank, message)) = &s.failed {
                    return Err(DistError::Aborted {
                        rank: *rank,
                        message: message.clone(),
                    });
                }
                let now = Instant::now();
                if now >= deadline {
                    let missing = s.deposits.iter().position(Option::is_none).unwrap_or(0);
                    let err = DistError::Timeout {
                        rank: missing,
                        op: op.name().into(),
                        seconds: hub.timeout.as_secs(),
                    };
                    s.failed.get_or_insert((self.rank, err.to_string()));
                    hub.ready.notify_all();
                    return Err(err);
                }
                s = hub
                    .ready
                    .wait_timeout(s, deadline - now)
                    .map_err(|_| poisoned())?
                    .0;
            }
        }
        let published = s.published.clone();
        if let Some((rank, (other, _))) = published.iter().enumerate().find(|(_, d)| d.0 != op) {
            return Err(DistError::Mismatch(format!(
                "rank {} called {}, rank {rank} {}",
                self.rank,
                op.name(),
                other.name()
            )));
        }
        Ok(published)
    }
}

impl Drop for ThreadCollective {
    fn drop(&mut self) {
        let message = format!("rank {}'s thread left the hub", self.rank);
        self.hub.fail(self.rank, message);
    }
}

impl Collective for ThreadCollective {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.hub.world
    }

    fn all_reduce_sum(&mut self, flat: &Tensor) -> Result<Tensor, DistError> {
        let own = flat.flatten_all()?.to_vec1::<f32>()?;
        let n = own.len();
        let all = self.exchange(Op::AllReduce, f32_bytes(&own))?;
        let parts: Vec<Vec<f32>> = all.iter().map(|(_, b)| f32_values(b)).collect();
        let sum = sum_in_rank_order(&parts, "all_reduce")?;
        Ok(Tensor::from_vec(sum, n, flat.device())?)
    }

    fn broadcast(&mut self, bytes: &[u8]) -> Result<Vec<u8>, DistError> {
        let all = self.exchange(Op::Broadcast, bytes.to_vec())?;
        Ok(all[0].1.clone())
    }

    fn gather(&mut self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DistError> {
        let all = self.exchange(Op::Gather, bytes.to_vec())?;
        Ok((self.rank == 0).then(|| all.iter().map(|(_, b)| b.clone()).collect()))
    }

    fn abort(&mut self, message: &str) {
        self.hub.fail(self.rank, message.to_string());
    }
}
