use super::error_chain;

#[derive(Debug, thiserror::Error)]
#[error("cannot read image {path}: {source}")]
struct ReadError {
    path: String,
    #[source]
    source: std::io::Error,
}

fn not_found() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory")
}

#[test]
fn a_cause_already_in_the_message_is_said_once() {
    let err = anyhow::Error::new(ReadError {
        path: "x.png".into(),
        source: not_found(),
    })
    .context("predicting on x.png");
    assert_eq!(
        error_chain(&err),
        "predicting on x.png: cannot read image x.png: No such file or directory"
    );
}

#[test]
fn causes_not_in_the_message_are_all_kept() {
    let err = anyhow::Error::new(not_found()).context("opening `a.json`");
    assert_eq!(
        error_chain(&err),
        "opening `a.json`: No such file or directory"
    );
}
