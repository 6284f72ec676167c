//! The Actions job summary: markdown appended to the file `GITHUB_STEP_SUMMARY` names. It needs
//! no token, so it is where the verdict always lands, fork PRs included.

use std::io::Write;
use std::path::Path;

use super::PublishError;

/// Append `markdown` (and a separating newline) to the summary file.
pub fn append_summary(path: &Path, markdown: &str) -> Result<(), PublishError> {
    let err = |source| PublishError::Summary {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(err)?;
    file.write_all(markdown.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .map_err(err)
}

#[cfg(test)]
mod tests {
    #[test]
    fn appends_without_clobbering_other_steps() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("summary.md");
        std::fs::write(&p, "## from an earlier step\n").unwrap();
        super::append_summary(&p, "### gate").unwrap();
        super::append_summary(&p, "again").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "## from an earlier step\n### gate\nagain\n"
        );
    }
}
