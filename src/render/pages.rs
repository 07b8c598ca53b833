//! The archive: an index of posts and one page per post.

use serde_json::json;

use super::Templates;
use crate::domain::Post;
use crate::error::Error;

impl Templates {
    pub fn index(&self, posts: &[Post]) -> Result<String, Error> {
        let posts: Vec<_> = posts.iter().map(|p| self.post(p)).collect();
        self.page("index.html", json!({ "posts": posts }))
    }

    pub fn post_page(&self, post: &Post) -> Result<String, Error> {
        let mut data = self.post(post);
        data["content_html"] = post.content_html.clone().into();
        self.page("post.html", json!({ "post": data }))
    }
}
