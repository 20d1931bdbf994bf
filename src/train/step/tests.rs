use super::*;

#[test]
fn sampler_seed_depends_on_run_seed_and_iteration_only() {
    assert_eq!(iteration_seed(1, 5), iteration_seed(1, 5));
    assert_ne!(iteration_seed(1, 5), iteration_seed(1, 6));
    assert_ne!(iteration_seed(1, 5), iteration_seed(2, 5));
}
