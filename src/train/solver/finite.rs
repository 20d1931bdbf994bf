//! The non-finite loss guard: called on each iteration's losses before the optimizer step, so a
//! NaN or infinite loss stops training before it reaches the weights or a checkpoint.
/// A loss that is NaN or infinite, with every component so the culprit is visible.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "non-finite loss at iteration {iteration}: {} (hint: lower the learning rate, enable \
     gradient clipping, or check the data; the last checkpoint was saved before this iteration)",
    describe(.losses)
)]
pub struct NonFiniteLoss {
    /// The iteration whose losses were not finite (0-based).
    pub iteration: u64,
    /// Every component, `(name, value)` in the model's order.
    pub losses: Vec<(String, f64)>,
}

fn describe(losses: &[(String, f64)]) -> String {
    let parts: Vec<String> = losses.iter().map(|(n, v)| format!("{n} = {v}")).collect();
    parts.join(", ")
}

/// Checks that every loss component (and so their sum) is finite.
pub fn check_finite_losses(iteration: u64, losses: &[(&str, f64)]) -> Result<(), NonFiniteLoss> {
    if losses.iter().all(|(_, v)| v.is_finite()) {
        Ok(())
    } else {
        Err(NonFiniteLoss {
            iteration,
            losses: losses.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        })
    }
}

#[cfg(test)]
mod tests;
