//! `detect doctor` and the hidden `detect parity` without a GPU: they say why plainly and exit
//! non-zero (a CPU-only build names the missing `--features cuda`; a CUDA build on a machine
//! without a GPU says "no GPU").
use std::process::Command;

fn detect(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_detect"))
        .args(args)
        .output()
        .expect("run detect");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg(not(feature = "cuda"))]
#[test]
fn doctor_in_a_cpu_only_build_says_so_and_fails() {
    let (ok, stdout, stderr) = detect(&["doctor"]);
    assert!(!ok, "doctor must fail without CUDA\n{stdout}\n{stderr}");
    assert!(stdout.contains("CPU-only build"), "{stdout}");
    assert!(
        stdout.contains("CUDA") && stdout.contains("built without `--features cuda`"),
        "{stdout}"
    );
    assert!(
        stderr.contains("built without CUDA support") && stderr.contains("--features cuda"),
        "{stderr}"
    );
}

#[cfg(not(feature = "cuda"))]
#[test]
fn parity_in_a_cpu_only_build_says_so_and_fails() {
    let (ok, _, stderr) = detect(&["parity", "--root", env!("CARGO_MANIFEST_DIR")]);
    assert!(!ok);
    assert!(stderr.contains("built without CUDA support"), "{stderr}");
}

/// A CUDA build: with a GPU the self-check must pass; without one, "no GPU" and a failure.
#[cfg(feature = "cuda")]
#[test]
fn doctor_in_a_cuda_build_checks_the_gpu_or_says_there_is_none() {
    let gpu = candle_core::Device::new_cuda(0).is_ok();
    let (ok, stdout, stderr) = detect(&["doctor"]);
    assert!(stdout.contains("built with CUDA"), "{stdout}");
    match gpu {
        true => assert!(
            ok && stdout.contains("self-check: PASS"),
            "{stdout}\n{stderr}"
        ),
        false => assert!(!ok && stderr.contains("no GPU"), "{stdout}\n{stderr}"),
    }
}

#[test]
fn parity_is_hidden_from_help() {
    let (ok, stdout, _) = detect(&["--help"]);
    assert!(ok);
    assert!(stdout.contains("doctor"), "{stdout}");
    assert!(!stdout.contains("parity"), "{stdout}");
}
