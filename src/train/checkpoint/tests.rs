use serde_json::json;

use super::*;

fn checkpoint(iteration: u64, value: f32) -> Checkpoint {
    let dev = Device::Cpu;
    let t = |v: &[f32]| Tensor::new(v, &dev).unwrap();
    Checkpoint {
        iteration,
        model: BTreeMap::from([
            (
                "backbone.body.conv1.weight".to_string(),
                t(&[value, 2.0, 3.0]),
            ),
            ("backbone.body.bn1.running_var".to_string(), t(&[1.0, 1.0])),
        ]),
        momentum: BTreeMap::from([(
            "backbone.body.conv1.weight".to_string(),
            t(&[0.5, -value, 0.0]),
        )]),
        rng_state: json!({"seed": 7, "epoch": 3, "position": iteration}),
        config: json!({"backbone": "resnext50_32x4d", "solver": {"base_lr": 0.02}}),
    }
}

fn assert_same(a: &Checkpoint, b: &Checkpoint) {
    assert_eq!(a.iteration, b.iteration);
    assert_eq!(a.rng_state, b.rng_state);
    assert_eq!(a.config, b.config);
    for (x, y) in [(&a.model, &b.model), (&a.momentum, &b.momentum)] {
        assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
        for (name, t) in x {
            let u = &y[name];
            assert_eq!(t.dims(), u.dims(), "{name}");
            assert_eq!(
                t.to_vec1::<f32>().unwrap(),
                u.to_vec1::<f32>().unwrap(),
                "{name}"
            );
        }
    }
}

#[test]
fn checkpoint_round_trips_bit_exactly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let saver = Checkpointer::new(dir.path(), 3);
    // A value that does not survive a round trip through decimal text with few digits.
    let original = checkpoint(1234, 0.1f32 + f32::EPSILON);
    let path = saver.save(&original)?;
    assert_eq!(path, dir.path().join("model_0001234.safetensors"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join(LAST_CHECKPOINT))?,
        "model_0001234.safetensors\n"
    );
    let loaded = saver
        .load_last(&Device::Cpu)?
        .expect("a checkpoint was saved");
    assert_same(&original, &loaded);
    Ok(())
}

#[test]
fn no_checkpoint_yet_is_none() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    assert!(Checkpointer::new(dir.path(), 1)
        .load_last(&Device::Cpu)?
        .is_none());
    Ok(())
}

#[test]
fn keeps_only_the_newest_k() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let saver = Checkpointer::new(dir.path(), 2);
    std::fs::write(dir.path().join(MODEL_FINAL), b"not a checkpoint")?;
    for it in [100, 200, 300, 400] {
        saver.save(&checkpoint(it, it as f32))?;
    }
    let kept: Vec<u64> = saver.list()?.into_iter().map(|(it, _)| it).collect();
    assert_eq!(kept, [300, 400]);
    assert!(
        dir.path().join(MODEL_FINAL).exists(),
        "pruning must not touch other files"
    );
    assert_eq!(saver.load_last(&Device::Cpu)?.unwrap().iteration, 400);
    Ok(())
}

/// Every way a write can fail midway: the previous checkpoint and `last_checkpoint` stay intact
/// and loadable, and the next save works.
#[test]
fn failed_save_leaves_previous_checkpoint_intact() -> anyhow::Result<()> {
    for fault in [
        Fault::WriteErrorAfter(100),
        Fault::KilledAfter(300),
        Fault::Rename,
    ] {
        let dir = tempfile::tempdir()?;
        let good = checkpoint(100, 1.0);
        Checkpointer::new(dir.path(), 1).save(&good)?;
        let last_before = std::fs::read(dir.path().join(LAST_CHECKPOINT))?;
        let failing = Checkpointer::new(dir.path(), 1).with_fault(fault);
        // Same iteration (overwrite in place) and a later one (would prune the good one).
        for it in [100, 200] {
            let err = failing.save(&checkpoint(it, 9.0)).unwrap_err();
            assert!(err.to_string().contains("injected"), "{fault:?}: {err}");
            assert_eq!(
                std::fs::read(dir.path().join(LAST_CHECKPOINT))?,
                last_before,
                "{fault:?}"
            );
            let loaded = Checkpointer::new(dir.path(), 1)
                .load_last(&Device::Cpu)?
                .unwrap();
            assert_same(&good, &loaded);
        }
        let temporaries = std::fs::read_dir(dir.path())?
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count();
        // Only a "killed" writer leaves its partial temporaries behind (one per attempt above;
        // they are never listed or loaded).
        let expected = if matches!(fault, Fault::KilledAfter(_)) {
            2
        } else {
            0
        };
        assert_eq!(temporaries, expected, "{fault:?}");
        let next = Checkpointer::new(dir.path(), 1).save(&checkpoint(200, 2.0))?;
        assert_eq!(load_checkpoint(&next, &Device::Cpu)?.iteration, 200);
    }
    Ok(())
}

#[test]
fn truncated_checkpoint_is_an_error_naming_the_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = Checkpointer::new(dir.path(), 1).save(&checkpoint(5, 1.0))?;
    let bytes = std::fs::read(&path)?;
    std::fs::write(&path, &bytes[..bytes.len() - 4])?;
    let err = load_checkpoint(&path, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model_0000005.safetensors"), "{err}");
    Ok(())
}

#[test]
fn model_final_carries_class_names_and_config() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(MODEL_FINAL);
    let ckpt = checkpoint(10, 4.0);
    let meta = ModelMeta {
        class_names: vec!["circle".into(), "square".into()],
        config: json!({"backbone": {"name": "resnext50_32x4d"}}),
    };
    save_model(&path, &ckpt.model, &meta)?;
    assert_eq!(read_model_meta(&path)?, Some(meta));
    // Plain state-dict names: a VarBuilder reads it directly.
    let vb = unsafe {
        candle_nn::VarBuilder::from_mmaped_safetensors(
            &[&path],
            candle_core::DType::F32,
            &Device::Cpu,
        )?
    };
    let w = vb.pp("backbone.body").get(3, "conv1.weight")?;
    assert_eq!(w.to_vec1::<f32>()?, [4.0, 2.0, 3.0]);
    // A checkpoint is not a model file, and a plain safetensors has no metadata.
    let plain = dir.path().join("plain.safetensors");
    candle_core::safetensors::save(&ckpt.model.clone().into_iter().collect(), &plain)?;
    assert_eq!(read_model_meta(&plain)?, None);
    assert!(load_checkpoint(&path, &Device::Cpu).is_err());
    Ok(())
}

#[test]
fn write_atomic_replaces_whole_files() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("config.json");
    write_atomic(&path, b"{\"a\": 1}")?;
    write_atomic(&path, b"{}")?;
    assert_eq!(std::fs::read(&path)?, b"{}");
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
    Ok(())
}

/// The child half of `killed_writer_process_leaves_a_loadable_checkpoint`: saves ever newer
/// checkpoints (16 MB each, every value = the iteration) until it is killed.
fn write_until_killed(dir: &str, start: u64) -> ! {
    let saver = Checkpointer::new(dir, 2);
    for iteration in start.. {
        let filled = Tensor::full(iteration as f32, 4 << 20, &Device::Cpu).unwrap();
        let ckpt = Checkpoint {
            iteration,
            model: BTreeMap::from([("w".to_string(), filled.clone())]),
            momentum: BTreeMap::from([("w".to_string(), filled)]),
            rng_state: json!(iteration),
            config: json!({}),
        };
        saver.save(&ckpt).unwrap();
    }
    unreachable!()
}

/// A real crash: a child process writing checkpoints is SIGKILLed at arbitrary moments; each
/// time, `last_checkpoint` names a complete checkpoint whose contents are all of one iteration.
#[test]
fn killed_writer_process_leaves_a_loadable_checkpoint() -> anyhow::Result<()> {
    const CHILD_DIR: &str = "DETECT_TEST_CHECKPOINT_CHILD_DIR";
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        write_until_killed(&dir, std::env::var("DETECT_TEST_START")?.parse()?);
    }
    let dir = tempfile::tempdir()?;
    let saver = Checkpointer::new(dir.path(), 2);
    let mut start = 1;
    for delay_ms in [
        None,
        Some(5),
        None,
        Some(37),
        None,
        Some(111),
        None,
        Some(250),
    ] {
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args([
                "--exact",
                "train::checkpoint::tests::killed_writer_process_leaves_a_loadable_checkpoint",
            ])
            .env(CHILD_DIR, dir.path())
            .env("DETECT_TEST_START", start.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        // Wait for this child's first checkpoint, then kill it a little later, mid-write.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let last_iteration = || -> anyhow::Result<u64> {
            let name = saver
                .last()?
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
            Ok(name
                .and_then(|n| {
                    n.strip_prefix("model_")?
                        .strip_suffix(".safetensors")?
                        .parse()
                        .ok()
                })
                .unwrap_or(0))
        };
        while last_iteration()? < start {
            assert!(
                std::time::Instant::now() < deadline,
                "the child wrote no checkpoint"
            );
            assert!(child.try_wait()?.is_none(), "the child exited early");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        match delay_ms {
            Some(ms) => std::thread::sleep(std::time::Duration::from_millis(ms)),
            // Kill while this child's temporary file exists: mid-write or before the rename.
            None => {
                let tmp = format!(".tmp-{}", child.id());
                while !std::fs::read_dir(dir.path())?
                    .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(&tmp)))
                {
                    assert!(child.try_wait()?.is_none(), "the child exited early");
                }
            }
        }
        child.kill()?; // SIGKILL: no destructor, no cleanup
        child.wait()?;
        let ckpt = saver
            .load_last(&Device::Cpu)?
            .expect("last_checkpoint exists");
        for t in ckpt.model.values().chain(ckpt.momentum.values()) {
            let (lo, hi) = (
                t.min_all()?.to_scalar::<f32>()?,
                t.max_all()?.to_scalar::<f32>()?,
            );
            assert_eq!((lo, hi), (ckpt.iteration as f32, ckpt.iteration as f32));
        }
        assert_eq!(ckpt.rng_state, json!(ckpt.iteration));
        start = ckpt.iteration + 1;
    }
    // The four kills aimed at a write leave partial temporaries (>= 2: a rename may slip in
    // between seeing the temporary and the kill).
    let torn = std::fs::read_dir(dir.path())?
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        })
        .count();
    assert!(torn >= 2, "only {torn} of 8 kills interrupted a write");
    Ok(())
}
