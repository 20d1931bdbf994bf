//! One epoch's batches: worker threads build batch jobs at most `prefetch` ahead of the
//! consumer, and the batches come out in job order.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::batch::Batch;
use super::build::build_batch;
use super::job::{JobOutput, LoaderError, Shared};

/// A job's output tagged with its position in the epoch.
type JobResult = (usize, Result<Option<Batch>, LoaderError>, Vec<String>);

struct Gate {
    /// Next job to hand to a worker.
    next_job: usize,
    /// Jobs the consumer has taken so far.
    consumed: usize,
}

/// The batches of one epoch, produced by worker threads and yielded in order.
pub struct EpochBatches {
    shared: Arc<Shared>,
    plan: Arc<Vec<Vec<usize>>>,
    epoch: u64,
    gate: Arc<(Mutex<Gate>, Condvar)>,
    stop: Arc<AtomicBool>,
    receiver: Option<Receiver<JobResult>>,
    workers: Vec<JoinHandle<()>>,
    pending: BTreeMap<usize, JobOutput>,
    next: usize,
    skipped: Vec<String>,
    failed: bool,
}

impl EpochBatches {
    pub(super) fn start(shared: Arc<Shared>, plan: Vec<Vec<usize>>, epoch: u64) -> Self {
        let plan = Arc::new(plan);
        let gate = Arc::new((
            Mutex::new(Gate {
                next_job: 0,
                consumed: 0,
            }),
            Condvar::new(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let workers_n = shared.config.num_workers;
        let window = shared.config.prefetch.max(1);
        let mut workers = Vec::new();
        let mut receiver = None;
        if workers_n > 0 {
            let (tx, rx) = sync_channel::<JobResult>(window);
            receiver = Some(rx);
            for _ in 0..workers_n {
                let (tx, shared, plan, gate, stop) = (
                    tx.clone(),
                    shared.clone(),
                    plan.clone(),
                    gate.clone(),
                    stop.clone(),
                );
                workers.push(std::thread::spawn(move || loop {
                    let job = {
                        let (lock, cvar) = &*gate;
                        let Ok(mut g) = lock.lock() else { return };
                        while !stop.load(Ordering::Relaxed)
                            && g.next_job < plan.len()
                            && g.next_job >= g.consumed + window
                        {
                            g = match cvar.wait(g) {
                                Ok(g) => g,
                                Err(_) => return,
                            };
                        }
                        if stop.load(Ordering::Relaxed) || g.next_job >= plan.len() {
                            return;
                        }
                        g.next_job += 1;
                        g.next_job - 1
                    };
                    let (result, skipped) = build_batch(&shared, &plan[job], epoch, job);
                    if tx.send((job, result, skipped)).is_err() {
                        return;
                    }
                }));
            }
        }
        EpochBatches {
            shared,
            plan,
            epoch,
            gate,
            stop,
            receiver,
            workers,
            pending: BTreeMap::new(),
            next: 0,
            skipped: Vec::new(),
            failed: false,
        }
    }

    /// Images skipped so far (with `skip_bad_images`).
    pub fn skipped(&self) -> usize {
        self.skipped.len()
    }

    /// The messages of the skipped images, in batch order.
    pub fn skipped_messages(&self) -> &[String] {
        &self.skipped
    }

    /// Number of batches in this epoch (some may be left out when all their images fail).
    pub fn len(&self) -> usize {
        self.plan.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plan.is_empty()
    }

    fn take_job(&mut self, job: usize) -> JobOutput {
        let Some(rx) = &self.receiver else {
            return build_batch(&self.shared, &self.plan[job], self.epoch, job);
        };
        loop {
            if let Some(r) = self.pending.remove(&job) {
                return r;
            }
            match rx.recv() {
                Ok((j, result, skipped)) => {
                    self.pending.insert(j, (result, skipped));
                }
                Err(_) => return (Err(LoaderError::WorkerStopped), Vec::new()),
            }
        }
    }
}

impl Iterator for EpochBatches {
    type Item = Result<Batch, LoaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && self.next < self.plan.len() {
            let job = self.next;
            let (result, skipped) = self.take_job(job);
            self.next += 1;
            {
                let (lock, cvar) = &*self.gate;
                if let Ok(mut g) = lock.lock() {
                    g.consumed = self.next;
                }
                cvar.notify_all();
            }
            self.skipped.extend(skipped);
            match result {
                Ok(Some(batch)) => return Some(Ok(batch)),
                Ok(None) => continue,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

impl Drop for EpochBatches {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.gate.1.notify_all();
        // Unblock workers waiting to send, then wait for them.
        self.receiver.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
