//! The archive: an index of posts and one page per post.

use serde_json::json;

use super::{post_context, site_context, Templates};
use crate::config::Config;
use crate::error::Error;
use crate::store::PostRecord;

pub fn index(
    config: &Config,
    templates: &Templates,
    posts: &[PostRecord],
) -> Result<String, Error> {
    let posts: Vec<_> = posts.iter().map(|p| post_context(config, p)).collect();
    templates.render(
        "index.html",
        &json!({ "site": site_context(config), "posts": posts }),
    )
}

pub fn post(config: &Config, templates: &Templates, post: &PostRecord) -> Result<String, Error> {
    let mut data = post_context(config, post);
    data["content_html"] = post.content_html.clone().into();
    templates.render(
        "post.html",
        &json!({ "site": site_context(config), "post": data }),
    )
}
