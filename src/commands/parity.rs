//! `detect parity` (hidden): every CUDA-against-CPU parity check (see `gpu_checks`), one line
//! per check, and with `--tsv FILE` one TSV row per check (`name, PASS|FAIL, measured, limit`),
//! rewritten after each group so that a run cut short keeps what finished. What
//! `scripts/gpu-run.sh` runs on the GPU machine.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::atomic::write_atomic;
use crate::gpu_checks::{self, versions, Check};

/// The TSV rows so far, written with a temporary file + rename.
fn write_tsv(path: &Path, checks: &[Check]) -> Result<()> {
    let text: String = checks.iter().map(|c| c.tsv() + "\n").collect();
    write_atomic(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

pub fn run(root: &Path, tsv: Option<&PathBuf>) -> Result<()> {
    let device = match gpu_checks::cuda_device() {
        Ok(d) => d,
        Err(why) => bail!("{why}"),
    };
    println!(
        "parity: CUDA ({}) against CPU, full f32, fixtures under {}",
        versions::gpu(&device),
        root.display()
    );
    let start = Instant::now();
    let mut done: Vec<Check> = Vec::new();
    let mut tsv_error = None;
    let checks = gpu_checks::all(root, &device, |group| {
        for c in group {
            let result = if c.passed { "PASS" } else { "FAIL" };
            println!("{result} {:<52} {} ({})", c.name, c.measured, c.limit);
        }
        let _ = std::io::stdout().flush();
        done.extend_from_slice(group);
        if let Some(path) = tsv {
            if let Err(e) = write_tsv(path, &done) {
                tsv_error.get_or_insert(e);
            }
        }
    });
    if let Some(e) = tsv_error {
        return Err(e);
    }
    let failed = checks.iter().filter(|c| !c.passed).count();
    println!(
        "parity: {} of {} checks passed in {:.1} s",
        checks.len() - failed,
        checks.len(),
        start.elapsed().as_secs_f64()
    );
    if failed > 0 {
        bail!("{failed} parity check(s) failed (the FAIL lines above)");
    }
    Ok(())
}
