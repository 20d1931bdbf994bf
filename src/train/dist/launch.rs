//! `detect train --gpus N` on a node, as `torchrun --nproc-per-node N` does: N worker processes
//! of this same binary with this node's share of the ranks, placed by the variables a worker
//! reads (`WORLD_SIZE`, `RANK`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`).
//!
//! The workers run in their own process group, so a Ctrl-C reaches them once, forwarded by the
//! launcher (they stop after the current iteration and rank 0 saves a checkpoint; a second
//! Ctrl-C quits at once). A worker that fails or dies makes the launcher stop the others (they
//! usually stop by themselves within moments: their collective calls fail) and exit with an
//! error naming it. If the launcher itself dies, Linux sends its workers SIGTERM.
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::options::Launch;

/// How long the other workers may take to stop by themselves after one failed.
const GRACE: Duration = Duration::from_secs(10);

/// Starts this node's workers (the same arguments as this process) and waits for them.
pub fn run(launch: &Launch) -> anyhow::Result<()> {
    let master = match &launch.master {
        Some(m) => m.clone(),
        None => format!("127.0.0.1:{}", free_port()?),
    };
    let (addr, port) = master
        .rsplit_once(':')
        .with_context(|| format!("--master {master}: expected ADDR:PORT"))?;
    let exe = std::env::current_exe().context("finding the detect binary to start workers")?;
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let world = launch.gpus * launch.nodes;
    let mut workers: Vec<(usize, Child)> = Vec::new();
    for local_rank in 0..launch.gpus {
        let rank = launch.node_rank * launch.gpus + local_rank;
        let mut command = Command::new(&exe);
        command
            .args(&args)
            .env("WORLD_SIZE", world.to_string())
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", local_rank.to_string())
            .env("LOCAL_WORLD_SIZE", launch.gpus.to_string())
            .env("MASTER_ADDR", addr)
            .env("MASTER_PORT", port)
            .process_group(0);
        stop_with_parent(&mut command);
        let child = match command.spawn() {
            Ok(c) => c,
            Err(e) => {
                stop_all(&mut workers);
                return Err(e).with_context(|| format!("starting worker rank {rank}"));
            }
        };
        eprintln!(
            "launcher: started rank {rank} of {world} (pid {}, LOCAL_RANK {local_rank})",
            child.id()
        );
        workers.push((rank, child));
    }
    let pids: Arc<Mutex<Vec<u32>>> =
        Arc::new(Mutex::new(workers.iter().map(|w| w.1.id()).collect()));
    let forward = pids.clone();
    let handler = ctrlc::set_handler(move || {
        eprintln!("\nlauncher: forwarding the interrupt to the workers");
        if let Ok(pids) = forward.lock() {
            for &pid in pids.iter() {
                // SAFETY: kill(2) with a child's pid and a valid signal number.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
            }
        }
    });
    if let Err(e) = handler {
        eprintln!("warning: Ctrl-C will not be forwarded to the workers: {e}");
    }
    let outcome = supervise(&mut workers);
    if let Ok(mut p) = pids.lock() {
        p.clear();
    }
    outcome
}

/// Waits for every worker; after the first failure, gives the others [`GRACE`] to stop, then
/// kills them. Reports the first worker killed by a signal, else the first that failed.
fn supervise(workers: &mut [(usize, Child)]) -> anyhow::Result<()> {
    let mut status: Vec<Option<ExitStatus>> = vec![None; workers.len()];
    let mut failure: Option<(usize, u32, ExitStatus)> = None;
    let mut deadline: Option<Instant> = None;
    while status.iter().any(Option::is_none) {
        let mut failed_now = Vec::new();
        for (i, (rank, child)) in workers.iter_mut().enumerate() {
            if status[i].is_some() {
                continue;
            }
            if let Some(s) = child.try_wait().context("waiting for a worker")? {
                status[i] = Some(s);
                if !s.success() {
                    failed_now.push((*rank, child.id(), s));
                }
            }
        }
        // A worker killed by a signal is the cause; the others exit with an error because it
        // left, and may be seen first (in this pass, or in an earlier one by a hair).
        let signalled = |f: &(usize, u32, ExitStatus)| f.2.signal().is_some();
        if let Some(f) = failed_now.into_iter().min_by_key(|f| !signalled(f)) {
            if failure
                .as_ref()
                .is_none_or(|old| !signalled(old) && signalled(&f))
            {
                failure = Some(f);
            }
            deadline.get_or_insert(Instant::now() + GRACE);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            for (i, (rank, child)) in workers.iter_mut().enumerate() {
                if status[i].is_none() {
                    eprintln!("launcher: stopping rank {rank} (pid {})", child.id());
                    let _ = child.kill();
                    status[i] = child.wait().ok();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match failure {
        None => Ok(()),
        Some((rank, pid, s)) => anyhow::bail!(
            "worker rank {rank} (pid {pid}) {}; every other worker has stopped\nhint: its own \
             error is printed above",
            describe(s)
        ),
    }
}

/// "exited with code 2", "was killed by signal 9 (SIGKILL)".
fn describe(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(9)) => "was killed by signal 9 (SIGKILL)".into(),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => "ended abnormally".into(),
    }
}

fn stop_all(workers: &mut Vec<(usize, Child)>) {
    for (_, child) in workers.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    workers.clear();
}

/// A free TCP port on the loopback interface for rank 0 to listen on.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("finding a free port for the workers' rendezvous")?;
    Ok(listener.local_addr()?.port())
}

/// The worker gets SIGTERM (an interrupt: it saves and stops) when the launcher dies.
fn stop_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches only the child's own settings.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}
