//! Chart images for the comment. GitHub has no image upload for comments through the API, so
//! the PNGs are committed to an assets branch (an orphan branch, created on first use, that
//! never touches the code branches) through the contents API, and the comment links to them
//! pinned to the commit that holds them: a later push to the branch cannot change an old
//! comment's pictures.

use base64::Engine as _;
use http::{Method, StatusCode};
use serde_json::json;

use super::PublishError;
use super::client::{GitHub, expect_success};

/// One file to commit.
pub struct Asset {
    pub file_name: String,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// The commit on the assets branch that holds every file.
    pub commit: String,
    /// `(file name, web link pinned to the commit)`, in the order given.
    pub links: Vec<(String, String)>,
}

const BRANCH_README: &str = "# gate assets\n\nCharts that `gate ci` attaches to pull-request comments. \
This branch is written by gate and shares no history with the code; it is safe to delete \
(old comments then lose their pictures).\n";

/// Commit `assets` under `folder/` on `branch` (created as an orphan branch if missing) and
/// return links pinned to the last commit.
pub async fn upload_assets(
    gh: &GitHub,
    branch: &str,
    folder: &str,
    assets: &[Asset],
    message: &str,
) -> Result<Uploaded, PublishError> {
    let mut commit = ensure_branch(gh, branch).await?;
    let mut paths = Vec::with_capacity(assets.len());
    for asset in assets {
        let path = format!("{folder}/{}", asset.file_name);
        let body = json!({
            "message": format!("{message}: {}", asset.file_name),
            "content": base64::engine::general_purpose::STANDARD.encode(&asset.bytes),
            "branch": branch,
        });
        let reply = gh
            .call(
                Method::PUT,
                &gh.repo_path(&format!("/contents/{}", encode_path(&path))),
                Some(&body),
                "commit a chart to the assets branch",
            )
            .await?;
        let done = expect_success("commit a chart to the assets branch", reply)?;
        commit = done["commit"]["sha"]
            .as_str()
            .ok_or_else(|| PublishError::Shape("a contents reply without `commit.sha`".into()))?
            .to_string();
        paths.push((asset.file_name.clone(), path));
    }
    let base = format!(
        "{}/{}",
        gh.config.server_url.trim_end_matches('/'),
        gh.config.repository
    );
    let links = paths
        .into_iter()
        .map(|(name, path)| {
            let url = format!("{base}/raw/{commit}/{}", encode_path(&path));
            (name, url)
        })
        .collect();
    Ok(Uploaded { commit, links })
}

/// The branch's head commit, creating the branch (one commit with a README, no parents) if it
/// does not exist yet.
async fn ensure_branch(gh: &GitHub, branch: &str) -> Result<String, PublishError> {
    if let Some(head) = read_branch(gh, branch).await? {
        return Ok(head);
    }
    let what = "create the assets branch";
    let tree = json!({ "tree": [ { "path": "README.md", "mode": "100644", "type": "blob", "content": BRANCH_README } ] });
    let reply = gh
        .call(Method::POST, &gh.repo_path("/git/trees"), Some(&tree), what)
        .await?;
    let tree_sha = sha(&expect_success(what, reply)?, "tree")?;
    let commit = json!({ "message": "gate: assets branch for PR comment charts", "tree": tree_sha, "parents": [] });
    let reply = gh
        .call(
            Method::POST,
            &gh.repo_path("/git/commits"),
            Some(&commit),
            what,
        )
        .await?;
    let commit_sha = sha(&expect_success(what, reply)?, "commit")?;
    let reference = json!({ "ref": format!("refs/heads/{branch}"), "sha": commit_sha });
    let reply = gh
        .call(
            Method::POST,
            &gh.repo_path("/git/refs"),
            Some(&reference),
            what,
        )
        .await?;
    if reply.status == StatusCode::UNPROCESSABLE_ENTITY {
        // Another job created it between our read and our write: use theirs.
        if let Some(head) = read_branch(gh, branch).await? {
            return Ok(head);
        }
    }
    expect_success(what, reply)?;
    eprintln!("GitHub: created the orphan branch `{branch}` for chart images");
    Ok(commit_sha)
}

/// The branch's head commit, or None when it does not exist.
async fn read_branch(gh: &GitHub, branch: &str) -> Result<Option<String>, PublishError> {
    let what = "read the assets branch";
    let reply = gh
        .call(
            Method::GET,
            &gh.repo_path(&format!("/git/ref/heads/{}", encode_path(branch))),
            None,
            what,
        )
        .await?;
    if reply.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let r = expect_success(what, reply)?;
    r["object"]["sha"]
        .as_str()
        .map(|s| Some(s.to_string()))
        .ok_or_else(|| PublishError::Shape("a ref without `object.sha`".into()))
}

fn sha(v: &serde_json::Value, what: &str) -> Result<String, PublishError> {
    v["sha"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| PublishError::Shape(format!("a created {what} without `sha`")))
}

/// Percent-encode a repository path for a URL, keeping `/` between segments.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(
            super::encode_path("pr-12/run 3/trend-a&b.png"),
            "pr-12/run%203/trend-a%26b.png"
        );
    }
}
