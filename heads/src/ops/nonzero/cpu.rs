//! `nonzero` on the CPU: one pass over the mask.

pub(super) fn nonzero(mask: &[u8]) -> Vec<u32> {
    mask.iter()
        .enumerate()
        .filter(|(_, &m)| m != 0)
        .map(|(i, _)| i as u32)
        .collect()
}
