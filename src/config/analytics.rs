//! `[analytics]`: what is counted after a send, none of it per person.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// Links in emails go through `/c/…` and are counted per issue and link.
    pub clicks: bool,
    /// A pixel per email, counted per issue; machines' opens apart.
    pub opens: bool,
    /// Archive page views per post and day.
    pub views: bool,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            clicks: true,
            opens: false,
            views: true,
        }
    }
}
