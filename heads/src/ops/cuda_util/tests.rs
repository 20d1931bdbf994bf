/// NVRTC needs no GPU: every kernel source must compile wherever the `cuda` build runs.
#[test]
fn nvrtc_compiles_every_kernel() {
    for (module, src, entries) in [
        (
            "detect_nms",
            include_str!("../../../kernels/nms.cu"),
            &["nms_mask", "nms_keep"][..],
        ),
        (
            "detect_roi_align",
            include_str!("../../../kernels/roi_align.cu"),
            &["roi_align_forward", "roi_align_backward"][..],
        ),
        (
            "detect_nonzero",
            include_str!("../../../kernels/nonzero.cu"),
            &["nonzero_u8"][..],
        ),
        (
            "detect_top_k",
            include_str!("../../../kernels/top_k.cu"),
            &["top_k_init", "top_k_step", "top_k_take"][..],
        ),
    ] {
        let ptx = super::ptx(module, src).unwrap_or_else(|e| panic!("{module}: {e}"));
        for entry in entries {
            assert!(
                ptx.contains(&format!(".entry {entry}(")),
                "{module}: no {entry}"
            );
        }
    }
}
