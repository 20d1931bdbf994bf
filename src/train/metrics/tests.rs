use super::*;

fn train(iteration: u64, total: f64) -> Record {
    let losses = [
        ("loss_classifier", total * 0.75),
        ("loss_box_reg", total * 0.25),
    ];
    Record::Train(TrainRecord::new(iteration, &losses, 0.02, 1.5, 0.1))
}

#[test]
fn writes_one_tagged_object_per_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("metrics.jsonl");
    let mut log = MetricsLog::create(&path)?;
    log.append(&train(20, 2.0))?;
    let eval = Record::Eval(EvalRecord {
        iteration: 20,
        metrics: BTreeMap::from([("AP".to_string(), 0.5)]),
    });
    log.append(&eval)?;
    let text = std::fs::read_to_string(&path)?;
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["type"], "train");
    assert_eq!(lines[0]["losses"]["loss_classifier"], 1.5);
    assert_eq!(lines[0]["seconds_per_iteration"], 1.5);
    assert_eq!(lines[1]["type"], "eval");
    assert_eq!(lines[1]["metrics"]["AP"], 0.5);
    assert_eq!(read_records(&path)?, vec![train(20, 2.0), eval]);
    Ok(())
}

#[test]
fn resume_drops_lines_after_the_checkpoint_and_a_torn_last_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("metrics.jsonl");
    let mut log = MetricsLog::create(&path)?;
    for it in [10, 20, 30] {
        log.append(&train(it, 1.0))?;
    }
    drop(log);
    // A crash mid-line.
    let mut f = OpenOptions::new().append(true).open(&path)?;
    f.write_all(b"{\"type\":\"train\",\"itera")?;
    let mut log = MetricsLog::resume(&path, 20)?;
    log.append(&train(30, 0.5))?;
    let its: Vec<(u64, f64)> = read_records(&path)?
        .into_iter()
        .map(|r| match r {
            Record::Train(t) => (t.iteration, t.total_loss),
            Record::Eval(_) => unreachable!(),
        })
        .collect();
    assert_eq!(its, [(10, 1.0), (20, 1.0), (30, 0.5)]);
    Ok(())
}

#[test]
fn corrupt_line_is_an_error_naming_file_and_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("metrics.jsonl");
    std::fs::write(&path, "{\"type\":\"bogus\"}\n{}\n")?;
    let err = read_records(&path).unwrap_err().to_string();
    assert!(err.contains("metrics.jsonl:1"), "{err}");
    assert!(read_records(&dir.path().join("missing.jsonl"))?.is_empty());
    Ok(())
}
