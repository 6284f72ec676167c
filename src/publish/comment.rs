//! The sticky comment: gate's one comment on a PR, found by a hidden marker on any page of the
//! PR's comments, edited in place, created only when none exists. Re-running CI never adds a
//! second comment, even when a create is retried after a gateway error that may have landed.

use http::Method;
use serde_json::{Value, json};

use super::PublishError;
use super::client::{GitHub, expect_success};

/// GitHub's page size limit for list endpoints.
const PER_PAGE: usize = 100;
/// A PR with more than 10,000 comments is not one gate will page through.
const MAX_PAGES: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentOutcome {
    pub id: u64,
    /// The comment's web address (empty when the API did not say).
    pub url: String,
    /// True when this call created the comment, false when it edited the existing one.
    pub created: bool,
}

/// Create or update gate's comment on PR `number`. `marker` (an HTML comment) must be in
/// `body`: it is how the next run finds this comment.
pub async fn upsert_comment(
    gh: &GitHub,
    number: u64,
    marker: &str,
    body: &str,
) -> Result<CommentOutcome, PublishError> {
    debug_assert!(body.contains(marker), "the body must carry the marker");
    let payload = json!({ "body": body });
    if let Some(id) = find(gh, number, marker).await? {
        return update(gh, id, &payload).await;
    }
    let path = gh.repo_path(&format!("/issues/{number}/comments"));
    let mut attempt = 1;
    loop {
        let failure = match gh
            .call_unrepeatable(Method::POST, &path, Some(&payload), "comment on the PR")
            .await
        {
            Ok(reply) => return outcome(&expect_success("comment on the PR", reply)?, true),
            Err(err @ (PublishError::Api { .. } | PublishError::Network { .. })) => err,
            Err(err) => return Err(err),
        };
        if attempt >= gh.attempts() {
            return Err(failure);
        }
        // A create that failed at a gateway may still have been stored: look again before
        // trying once more, so the retry cannot leave two comments.
        let wait = gh.backoff(attempt);
        eprintln!(
            "GitHub: {failure}; checking in {:.1} s whether the comment landed, then retrying",
            wait.as_secs_f64()
        );
        tokio::time::sleep(wait).await;
        if let Some(id) = find(gh, number, marker).await? {
            return update(gh, id, &payload).await;
        }
        attempt += 1;
    }
}

async fn update(gh: &GitHub, id: u64, payload: &Value) -> Result<CommentOutcome, PublishError> {
    let path = gh.repo_path(&format!("/issues/comments/{id}"));
    let reply = gh
        .call(
            Method::PATCH,
            &path,
            Some(payload),
            "update gate's PR comment",
        )
        .await?;
    outcome(&expect_success("update gate's PR comment", reply)?, false)
}

fn outcome(comment: &Value, created: bool) -> Result<CommentOutcome, PublishError> {
    let id = comment["id"]
        .as_u64()
        .ok_or_else(|| PublishError::Shape("a comment without a numeric `id`".into()))?;
    Ok(CommentOutcome {
        id,
        url: comment["html_url"].as_str().unwrap_or_default().to_string(),
        created,
    })
}

/// The id of the oldest comment carrying `marker`, reading every page.
async fn find(gh: &GitHub, number: u64, marker: &str) -> Result<Option<u64>, PublishError> {
    for page in 1..=MAX_PAGES {
        let path = gh.repo_path(&format!(
            "/issues/{number}/comments?per_page={PER_PAGE}&page={page}"
        ));
        let reply = gh
            .call(Method::GET, &path, None, "list the PR's comments")
            .await?;
        let has_next = reply
            .headers
            .get_all(http::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("rel=\"next\""));
        let has_link = reply.headers.contains_key(http::header::LINK);
        let body = expect_success("list the PR's comments", reply)?;
        let comments = body
            .as_array()
            .ok_or_else(|| PublishError::Shape("the comment list is not an array".into()))?;
        if let Some(found) = comments
            .iter()
            .find(|c| c["body"].as_str().is_some_and(|b| b.contains(marker)))
        {
            return Ok(found["id"].as_u64());
        }
        // Stop at a short page, or when GitHub's Link header says there is no next page.
        if comments.len() < PER_PAGE || (has_link && !has_next) {
            return Ok(None);
        }
    }
    Ok(None)
}
