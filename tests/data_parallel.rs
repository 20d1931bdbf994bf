//! Data-parallel training (issue 18): 2 ranks × batch 2 train exactly as 1 process × batch 4.
//!
//! The expected losses and weights come from a plain single-process run of the `detect`
//! binary (no collective, no shard); the runs under test are 2 ranks as threads of this process
//! (the in-process hub) and 2 `detect` worker processes over loopback TCP. Also: the loader's
//! shards are disjoint and cover each epoch, only rank 0 writes, a run resumes at another world
//! size, and a worker that is killed or hangs stops the others with a message naming it.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use candle_core::Device;
use clap::Parser;
use detect::cli::{Cli, Command as Sub};
use detect::train::dist::threads::ThreadHub;
use detect::train::dist::{Backend, WorkerEnv};
use detect::train::options::TrainOptions;

const ITERS: u64 = 3;
/// Relative tolerance of losses and weights against the single process.
const TOLERANCE: f64 = 1e-5;

/// A tiny shapes run: 64 px images, 8 training and 4 validation images, global batch 4, a
/// checkpoint after every iteration (the weights after each step).
fn train_args(out: &Path, iters: u64, extra: &[&str]) -> Vec<String> {
    let iters = iters.to_string();
    let mut args = vec![
        "train",
        "--dataset",
        "shapes",
        "--shapes-train-images",
        "8",
        "--shapes-val-images",
        "4",
        "--shapes-image-size",
        "64",
        "--min-size",
        "64",
        "--max-size",
        "64",
        "--batch-size",
        "4",
        "--log-period",
        "1",
        "--checkpoint-period",
        "1",
        "--iters",
        &iters,
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.into_iter().map(String::from).collect()
}

fn detect_command(args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_detect"));
    c.args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("WORLD_SIZE")
        .env_remove("RANK")
        .env("DETECT_DIST_BACKEND", "tcp");
    c
}

/// Worker `rank` of 2 over loopback TCP at `port`, placed by the torchrun-style variables.
fn worker(rank: usize, port: u16, args: &[String]) -> Command {
    let mut c = detect_command(args);
    c.env("WORLD_SIZE", "2")
        .env("RANK", rank.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string());
    c
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// What a run wrote: per iteration, the four losses and the weights after the step.
struct Trained {
    losses: Vec<BTreeMap<String, f64>>,
    weights: Vec<BTreeMap<String, Vec<f32>>>,
}

fn read_losses(out: &Path) -> Vec<(u64, BTreeMap<String, f64>)> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "train")
        .map(|v| {
            let losses = v["losses"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, x)| (k.clone(), x.as_f64().unwrap()))
                .collect();
            (v["iteration"].as_u64().unwrap(), losses)
        })
        .collect()
}

fn read_weights(out: &Path, iteration: u64) -> BTreeMap<String, Vec<f32>> {
    let path = out.join(format!("model_{iteration:07}.safetensors"));
    let c = detect::train::checkpoint::load_checkpoint(&path, &Device::Cpu).unwrap();
    c.model
        .into_iter()
        .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

fn read_run(out: &Path, iterations: std::ops::RangeInclusive<u64>) -> Trained {
    let logged = read_losses(out);
    let logged_iterations: Vec<u64> = logged.iter().map(|l| l.0).collect();
    assert_eq!(
        logged_iterations,
        (1..=*iterations.end()).collect::<Vec<_>>()
    );
    Trained {
        losses: logged.into_iter().map(|l| l.1).collect(),
        weights: iterations.map(|i| read_weights(out, i)).collect(),
    }
}

/// The single-process run every test compares with (trained once per test binary).
fn reference() -> &'static (tempfile::TempDir, Trained) {
    static REFERENCE: OnceLock<(tempfile::TempDir, Trained)> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("single");
        let result = detect_command(&train_args(&out, ITERS, &[]))
            .output()
            .unwrap();
        assert_ok(&result, "the single-process run");
        let trained = read_run(&out, 1..=ITERS);
        (dir, trained)
    })
}

/// Losses and weights of `got` equal the reference's within [`TOLERANCE`] (relative to each
/// loss, and to each tensor's largest magnitude), from iteration `first` on.
fn assert_matches_reference(got: &Trained, first: u64) {
    let (_, want) = reference();
    let skip = (first - 1) as usize;
    for (i, (g, w)) in got.losses.iter().zip(&want.losses).enumerate().skip(skip) {
        assert_eq!(g.len(), 4);
        for (name, &x) in w {
            let y = g[name];
            assert!(
                (x - y).abs() <= TOLERANCE * x.abs(),
                "iteration {}: {name} {y} vs the single process's {x}",
                i + 1
            );
        }
    }
    for (k, (g, w)) in got.weights.iter().zip(&want.weights[skip..]).enumerate() {
        assert_eq!(g.len(), w.len());
        for (name, x) in w {
            let y = &g[name];
            let scale = x.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
            let diff = x.iter().zip(y).fold(0f32, |m, (a, b)| m.max((a - b).abs())) as f64;
            assert!(
                diff <= TOLERANCE * scale,
                "after iteration {}: `{name}` differs by {diff} (largest magnitude {scale})",
                first + k as u64
            );
        }
    }
}

#[test]
fn shards_are_disjoint_and_cover_each_epoch() {
    use datasets::dataset::{Dataset, DatasetSpec};
    use datasets::loader::{DataLoader, LoaderConfig, Mode, Shard};
    use datasets::shapes::{ShapesConfig, Split};
    let config = ShapesConfig {
        num_train: 16,
        image_size: 64,
        ..ShapesConfig::default()
    };
    let data = Arc::new(Dataset::open(&DatasetSpec::Shapes(config), Split::Train).unwrap());
    let map = data.coco.category_map();
    let loader = |index| {
        let config = LoaderConfig {
            batch_size: 4,
            seed: 1,
            num_workers: 0,
            shard: Shard { index, count: 2 },
            ..LoaderConfig::default()
        };
        DataLoader::new(data.clone(), &map, Default::default(), config, Mode::Train)
    };
    let (first, second) = (loader(0), loader(1));
    for epoch in 0..2 {
        let plan = first.epoch_image_ids(epoch);
        let a: Vec<Vec<u64>> = first.epoch(epoch).map(|b| b.unwrap().image_ids).collect();
        let b: Vec<Vec<u64>> = second.epoch(epoch).map(|b| b.unwrap().image_ids).collect();
        assert_eq!(plan.len(), 4);
        let mut seen: Vec<u64> = Vec::new();
        for ((whole, x), y) in plan.iter().zip(&a).zip(&b) {
            assert_eq!((x.len(), y.len()), (2, 2));
            assert!(x.iter().all(|id| !y.contains(id)), "disjoint: {x:?} {y:?}");
            assert_eq!([x.as_slice(), y.as_slice()].concat(), *whole);
            seen.extend(x.iter().chain(y));
        }
        seen.sort();
        assert_eq!(seen, (1..=16).collect::<Vec<u64>>(), "epoch {epoch}");
    }
}

#[test]
fn two_thread_ranks_train_as_one_process_with_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let hub = ThreadHub::new(2, Duration::from_secs(120));
    let outs: Vec<PathBuf> = (0..2)
        .map(|r| dir.path().join(format!("rank{r}")))
        .collect();
    let handles: Vec<_> = (0..2)
        .map(|rank| {
            let mut args = vec!["detect".to_string()];
            args.extend(train_args(&outs[rank], ITERS, &[]));
            let Sub::Train(train) = Cli::try_parse_from(args).unwrap().command else {
                unreachable!("a train command")
            };
            let env = WorkerEnv {
                world_size: 2,
                rank,
                local_rank: rank,
                local_world_size: Some(2),
                master: String::new(),
            };
            let options = TrainOptions::from_args_in(&train, Some(env), Backend::Tcp).unwrap();
            let mut collective = hub.join(rank);
            std::thread::spawn(move || {
                detect::train::trainer::train_with(&options, &mut collective)
                    .map_err(|e| format!("{e:#}"))
            })
        })
        .collect();
    for (rank, h) in handles.into_iter().enumerate() {
        h.join()
            .unwrap()
            .unwrap_or_else(|e| panic!("rank {rank}: {e}"));
    }
    assert!(!outs[1].exists(), "rank 1 wrote its output folder");
    assert_matches_reference(&read_run(&outs[0], 1..=ITERS), 1);
}

#[test]
fn two_worker_processes_over_tcp_train_as_one_and_only_rank_0_writes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let outs: Vec<PathBuf> = (0..2)
        .map(|r| dir.path().join(format!("rank{r}")))
        .collect();
    let children: Vec<Child> = (0..2)
        .map(|r| {
            worker(r, port, &train_args(&outs[r], ITERS, &["--profile"]))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (rank, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        assert_ok(&output, &format!("rank {rank}"));
        // --profile: each worker's lines say whose they are and time the all-reduce.
        let printed = text(&output.stdout) + &text(&output.stderr);
        let line = printed
            .lines()
            .find(|l| l.starts_with(&format!("rank {rank} profile iteration 1: ")));
        let line = line.unwrap_or_else(|| panic!("rank {rank}: no profile line in\n{printed}"));
        assert!(line.contains(", all_reduce "), "{line}");
    }
    assert!(!outs[1].exists(), "rank 1 wrote its output folder");
    for file in [
        "config.json",
        "metrics.jsonl",
        "loss.png",
        "model_final.safetensors",
    ] {
        assert!(outs[0].join(file).is_file(), "rank 0 wrote no {file}");
    }
    // The final evaluation ran split across the ranks and was gathered on rank 0.
    let metrics = std::fs::read_to_string(outs[0].join("metrics.jsonl")).unwrap();
    assert!(metrics.contains(r#""type":"eval""#), "{metrics}");
    // The log reports the time in collective calls (a single process's does not).
    let train_lines = metrics.lines().filter(|l| l.contains(r#""type":"train""#));
    assert!(train_lines.clone().count() == ITERS as usize);
    assert!(
        train_lines
            .clone()
            .all(|l| l.contains(r#""all_reduce_seconds":"#)),
        "{metrics}"
    );
    let single = std::fs::read_to_string(reference().0.path().join("single/metrics.jsonl"));
    assert!(!single.unwrap().contains("all_reduce_seconds"));
    assert_matches_reference(&read_run(&outs[0], 1..=ITERS), 1);
}

#[test]
fn a_single_process_checkpoint_resumes_on_two_workers() {
    let (reference_dir, _) = reference();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("resumed");
    std::fs::create_dir(&out).unwrap();
    let single = reference_dir.path().join("single");
    let ckpt = "model_0000001.safetensors";
    std::fs::copy(single.join(ckpt), out.join(ckpt)).unwrap();
    std::fs::write(out.join("last_checkpoint"), ckpt).unwrap();
    let head = std::fs::read_to_string(single.join("metrics.jsonl")).unwrap();
    std::fs::write(
        out.join("metrics.jsonl"),
        format!("{}\n", head.lines().next().unwrap()),
    )
    .unwrap();
    let port = free_port();
    let other = dir.path().join("rank1");
    let args = |out: &Path| train_args(out, ITERS, &["--resume"]);
    let children: Vec<Child> = [(0, &out), (1, &other)]
        .into_iter()
        .map(|(r, o)| {
            worker(r, port, &args(o))
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (rank, child) in children.into_iter().enumerate() {
        assert_ok(&child.wait_with_output().unwrap(), &format!("rank {rank}"));
    }
    assert_matches_reference(&read_run(&out, 2..=ITERS), 2);
}

/// Collects a child's stderr lines as they come.
fn capture_stderr(child: &mut Child) -> Arc<Mutex<String>> {
    let captured = Arc::new(Mutex::new(String::new()));
    let sink = captured.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    captured
}

/// Waits until rank 0 has logged an iteration (the ranks are training), at most 60 s; fails
/// at once if `child` ends first.
fn wait_for_training(out: &Path, child: &mut Child, stderr: &Mutex<String>) {
    let start = Instant::now();
    while !std::fs::read_to_string(out.join("metrics.jsonl")).is_ok_and(|m| m.contains("train")) {
        if let Some(status) = child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(200));
            panic!(
                "ended ({status}) before training: {}",
                stderr.lock().unwrap()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no iteration logged"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` at most `limit`; its status, or None (then it is killed).
fn wait_at_most(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[test]
fn a_hung_worker_stops_the_others_within_the_timeout_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let outs: Vec<PathBuf> = (0..2)
        .map(|r| dir.path().join(format!("rank{r}")))
        .collect();
    let mut children: Vec<Child> = (0..2)
        .map(|r| {
            let args = train_args(&outs[r], 1000, &["--dist-timeout", "3"]);
            worker(r, port, &args)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let rank0_err = capture_stderr(&mut children[0]);
    wait_for_training(&outs[0], &mut children[0], &rank0_err);
    signal(&children[1], libc::SIGSTOP);
    let stopped = Instant::now();
    let status = wait_at_most(&mut children[0], Duration::from_secs(30));
    let waited = stopped.elapsed();
    signal(&children[1], libc::SIGKILL);
    let _ = children[1].wait();
    let status = status.expect("rank 0 still running 30 s after rank 1 hung");
    std::thread::sleep(Duration::from_millis(200)); // the reader thread's last lines
    let err = rank0_err.lock().unwrap().clone();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("rank 1 did not answer within 3 s"), "{err}");
    // The timeout, plus at most one step and the start of the wait.
    assert!(waited < Duration::from_secs(15), "rank 0 took {waited:?}");
}

#[test]
fn the_launcher_stops_the_run_when_a_worker_is_killed_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = train_args(&out, 1000, &["--gpus", "2", "--dist-timeout", "20"]);
    let mut launcher = detect_command(&args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = capture_stderr(&mut launcher);
    wait_for_training(&out, &mut launcher, &err);
    let log = err.lock().unwrap().clone();
    let pid: i32 = log
        .lines()
        .find_map(|l| l.split("started rank 1 of 2 (pid ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid for rank 1 in: {log}"));
    // SAFETY: kill(2) on the launcher's child, which this test started through it.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let status = wait_at_most(&mut launcher, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(200));
    let log = err.lock().unwrap().clone();
    let status = status.unwrap_or_else(|| panic!("the launcher still runs 30 s on: {log}"));
    assert_eq!(status.code(), Some(2), "{log}");
    let want = format!("worker rank 1 (pid {pid}) was killed by signal 9 (SIGKILL)");
    assert!(log.contains(&want), "{log}");
    // Rank 0 said why it stopped, naming rank 1.
    assert!(log.contains("rank 1 closed its connection"), "{log}");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn gpus_on_a_cpu_only_build_needs_the_tcp_backend() {
    let dir = tempfile::tempdir().unwrap();
    let args = train_args(&dir.path().join("run"), ITERS, &["--gpus", "2"]);
    let result = detect_command(&args)
        .env("DETECT_DIST_BACKEND", "nccl")
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(2));
    let err = text(&result.stderr);
    assert!(err.contains("needs a CUDA build"), "{err}");
    assert!(err.contains("DETECT_DIST_BACKEND=tcp"), "{err}");
    assert!(
        !dir.path().join("run").exists(),
        "nothing is started or written"
    );
}

#[test]
fn ctrl_c_on_the_launcher_stops_every_worker_and_rank_0_saves() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = train_args(&out, 1000, &["--gpus", "2"]);
    let mut launcher = detect_command(&args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = capture_stderr(&mut launcher);
    wait_for_training(&out, &mut launcher, &err);
    signal(&launcher, libc::SIGINT);
    let status = wait_at_most(&mut launcher, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(200));
    let log = err.lock().unwrap().clone();
    let status = status.unwrap_or_else(|| panic!("still running 60 s after Ctrl-C: {log}"));
    assert!(status.success(), "{log}");
    assert!(
        log.contains("interrupted: saved a checkpoint at iteration"),
        "{log}"
    );
    let last = std::fs::read_to_string(out.join("last_checkpoint")).unwrap();
    assert!(out.join(last.trim()).is_file(), "{last}");
}

#[test]
fn one_worker_through_the_collective_path_trains_as_one_process() {
    // `--gpus 1` makes every collective call (a world of one), as the GPU check's NCCL stage.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let result = detect_command(&train_args(&out, ITERS, &["--gpus", "1"]))
        .output()
        .unwrap();
    assert_ok(&result, "--gpus 1");
    assert!(text(&result.stderr).contains("launcher: started rank 0 of 1"));
    assert_matches_reference(&read_run(&out, 1..=ITERS), 1);
}
