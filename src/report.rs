//! How an error reaches the user: its chain of causes joined by `: `, each thing said once.
//!
//! Library errors often put their cause in their own message (`cannot read x: No such file
//! or directory`) and also return it as `source()`, so printing the whole chain (`{err:#}`)
//! would repeat the OS message. A cause whose text the message before it already contains is
//! left out.

/// The error and its causes, outermost first, without repeats.
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests;
