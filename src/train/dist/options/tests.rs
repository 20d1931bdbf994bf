use super::*;

fn args(gpus: Option<usize>, nodes: Option<usize>, node_rank: Option<usize>) -> DistArgs {
    DistArgs {
        gpus,
        nodes,
        node_rank,
        master: None,
        dist_timeout: 600,
    }
}

fn worker(world_size: usize, rank: usize, local: Option<usize>) -> WorkerEnv {
    WorkerEnv {
        world_size,
        rank,
        local_rank: rank % local.unwrap_or(world_size),
        local_world_size: local,
        master: "127.0.0.1:29500".into(),
    }
}

fn error(result: anyhow::Result<impl std::fmt::Debug>) -> String {
    format!("{:#}", result.unwrap_err())
}

#[test]
fn gpus_without_worker_variables_is_the_launcher() {
    let d = DistOptions::new(&args(Some(2), None, None), None, Backend::Tcp).unwrap();
    let want = Launch {
        gpus: 2,
        nodes: 1,
        node_rank: 0,
        master: None,
    };
    assert_eq!(d.role, Role::Launcher(want));
    assert_eq!((d.world_size(), d.rank()), (2, 0));
    assert_eq!(d.timeout, Duration::from_secs(600));
    assert!(
        d.device(None).unwrap().is_cpu(),
        "the launcher trains on nothing"
    );
}

#[test]
fn no_gpus_and_no_variables_is_one_process() {
    let d = DistOptions::new(&args(None, None, None), None, Backend::Nccl).unwrap();
    assert_eq!((d.role.clone(), d.world_size()), (Role::Single, 1));
}

#[test]
fn several_nodes_need_a_node_rank_and_a_master() {
    let e = error(DistOptions::new(
        &args(Some(8), Some(2), None),
        None,
        Backend::Tcp,
    ));
    assert!(e.contains("--nodes 2 needs --node-rank"), "{e}");
    let e = error(DistOptions::new(
        &args(Some(8), Some(2), Some(1)),
        None,
        Backend::Tcp,
    ));
    assert!(e.contains("--nodes 2 needs --master ADDR:PORT"), "{e}");
    let e = error(DistOptions::new(
        &args(Some(8), Some(2), Some(2)),
        None,
        Backend::Tcp,
    ));
    assert!(e.contains("--node-rank 2 is outside --nodes 2"), "{e}");
    let mut two = args(Some(8), Some(2), Some(1));
    two.master = Some("10.0.0.1:29500".into());
    let d = DistOptions::new(&two, None, Backend::Tcp).unwrap();
    assert_eq!((d.world_size(), d.rank()), (16, 0));
}

#[test]
fn zero_counts_and_a_lone_master_are_refused() {
    let e = error(DistOptions::new(
        &args(Some(0), None, None),
        None,
        Backend::Tcp,
    ));
    assert!(e.contains("--gpus must be at least 1"), "{e}");
    let mut a = args(Some(2), None, None);
    a.dist_timeout = 0;
    let e = error(DistOptions::new(&a, None, Backend::Tcp));
    assert!(e.contains("--dist-timeout must be at least 1"), "{e}");
    let mut a = args(None, None, None);
    a.master = Some("127.0.0.1:1".into());
    let e = error(DistOptions::new(&a, None, Backend::Tcp));
    assert!(e.contains("--master needs --gpus"), "{e}");
}

#[test]
fn a_worker_checks_gpus_and_node_rank_against_its_variables() {
    let e = error(DistOptions::new(
        &args(Some(2), None, None),
        Some(worker(4, 1, None)),
        Backend::Tcp,
    ));
    assert!(
        e.contains("WORLD_SIZE=4 disagrees with --gpus 2 on 1 node(s)"),
        "{e}"
    );
    let e = error(DistOptions::new(
        &args(Some(2), Some(2), Some(0)),
        Some(worker(4, 3, Some(2))),
        Backend::Tcp,
    ));
    assert!(e.contains("RANK=3 is not on --node-rank 0"), "{e}");
    let d = DistOptions::new(
        &args(Some(2), Some(2), Some(1)),
        Some(worker(4, 3, Some(2))),
        Backend::Tcp,
    )
    .unwrap();
    assert_eq!((d.world_size(), d.rank()), (4, 3));
    // Without --gpus (torchrun, SLURM) the variables alone place it.
    let d = DistOptions::new(
        &args(None, None, None),
        Some(worker(4, 2, None)),
        Backend::Tcp,
    )
    .unwrap();
    assert_eq!((d.world_size(), d.rank()), (4, 2));
}

#[test]
fn device_must_agree_with_one_gpu_per_worker() {
    let d = DistOptions::new(
        &args(Some(2), None, None),
        Some(worker(2, 1, Some(2))),
        Backend::Tcp,
    )
    .unwrap();
    let e = error(d.device(Some("cuda:1")));
    assert!(
        e.contains("--device cuda:1 disagrees with 2 workers"),
        "{e}"
    );
    assert!(e.contains("CUDA_VISIBLE_DEVICES"), "{e}");
    assert!(
        d.device(Some("cpu")).unwrap().is_cpu(),
        "cpu with the TCP backend"
    );
    assert!(d.device(None).unwrap().is_cpu(), "TCP defaults to the CPU");
    let launcher = DistOptions::new(&args(Some(4), None, None), None, Backend::Tcp).unwrap();
    assert!(error(launcher.device(Some("cuda:2"))).contains("disagrees with 4 workers"));
}

#[test]
fn nccl_needs_a_cuda_build_and_gpus() {
    let result = DistOptions::new(&args(Some(2), None, None), None, Backend::Nccl);
    if cfg!(feature = "cuda") {
        let d = result.unwrap();
        let e = error(d.device(Some("cpu")));
        assert!(e.contains("--device cpu disagrees"), "{e}");
    } else {
        let e = error(result);
        assert!(e.contains("needs a CUDA build"), "{e}");
    }
}

#[test]
fn worker_variables_are_read_and_checked() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|p| p.0 == name).map(|p| p.1.to_string())
    };
    assert_eq!(WorkerEnv::from_vars(vars(&[])).unwrap(), None);
    let env = WorkerEnv::from_vars(vars(&[("WORLD_SIZE", "2"), ("RANK", "1")]))
        .unwrap()
        .unwrap();
    assert_eq!(
        (env.local_rank, env.master.as_str()),
        (1, "127.0.0.1:29500")
    );
    let e = error(WorkerEnv::from_vars(vars(&[("WORLD_SIZE", "2")])));
    assert!(e.contains("WORLD_SIZE is set but RANK is not"), "{e}");
    let e = error(WorkerEnv::from_vars(vars(&[
        ("WORLD_SIZE", "2"),
        ("RANK", "2"),
    ])));
    assert!(e.contains("RANK=2 is outside WORLD_SIZE=2"), "{e}");
    static BAD_PORT: [(&str, &str); 3] = [("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_PORT", "x")];
    let e = error(WorkerEnv::from_vars(vars(&BAD_PORT)));
    assert!(e.contains("MASTER_PORT=x: expected a port number"), "{e}");
    let e = error(Backend::parse(Some("gloo")));
    assert!(
        e.contains("DETECT_DIST_BACKEND=gloo: expected `nccl` or `tcp`"),
        "{e}"
    );
}
