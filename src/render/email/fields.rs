//! The fields that differ between two readers of one issue, and a body with
//! holes for them: rendered once with a marker per field, then filled per
//! reader by concatenation.

use std::ops::Range;

use serde_json::json;

use crate::domain::hex;

/// The values that differ between two recipients of the same issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Email,
    Name,
    UnsubscribeUrl,
    PreferencesUrl,
    /// The email's counting tag, in its counted links and open pixel.
    Tag,
}

impl Field {
    const ALL: [Field; 5] = [
        Field::Email,
        Field::Name,
        Field::UnsubscribeUrl,
        Field::PreferencesUrl,
        Field::Tag,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Email => "email",
            Field::Name => "name",
            Field::UnsubscribeUrl => "unsubscribe",
            Field::PreferencesUrl => "preferences",
            Field::Tag => "tag",
        }
    }
}

/// The markers of one rendering. A post or a feed entry may hold any text, the
/// private-use characters of a marker included; what it cannot hold is the
/// random key drawn for this rendering, so no content can become a field.
/// Neither HTML escaping nor CSS inlining changes a marker.
pub(super) struct Markers {
    key: String,
}

impl Markers {
    pub(super) fn new() -> Markers {
        Markers {
            key: hex(&rand::random::<[u8; 16]>()),
        }
    }

    pub(super) fn of(&self, field: Field) -> String {
        format!("\u{E000}{}:{}\u{E001}", self.key, field.name())
    }

    /// What templates get for the fields: `subscriber`, `unsubscribe_url`, `preferences_url`.
    pub(super) fn add_to(&self, data: &mut serde_json::Value) {
        data["subscriber"] =
            json!({ "email": self.of(Field::Email), "name": self.of(Field::Name) });
        data["unsubscribe_url"] = self.of(Field::UnsubscribeUrl).into();
        data["preferences_url"] = self.of(Field::PreferencesUrl).into();
    }

    /// A rendered body cut at this rendering's markers.
    pub(super) fn split(&self, rendered: &str) -> Personalizable {
        let markers: Vec<(Field, String)> = Field::ALL.iter().map(|&f| (f, self.of(f))).collect();
        let mut parts = Vec::new();
        let mut rest = rendered;
        loop {
            let next = markers
                .iter()
                .filter_map(|(f, m)| rest.find(m.as_str()).map(|i| (i, *f, m.len())))
                .min_by_key(|(i, _, _)| *i);
            match next {
                Some((i, field, len)) => {
                    if i > 0 {
                        parts.push(Part::Literal(rest[..i].to_string()));
                    }
                    parts.push(Part::Field(field));
                    rest = &rest[i + len..];
                }
                None => {
                    if !rest.is_empty() {
                        parts.push(Part::Literal(rest.to_string()));
                    }
                    break;
                }
            }
        }
        Personalizable::from_parts(parts)
    }
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Field(Field),
}

/// A rendered body with holes for the per-subscriber fields.
#[derive(Debug, Clone)]
pub struct Personalizable {
    parts: Vec<Part>,
    literal_len: usize,
}

impl Personalizable {
    fn from_parts(parts: Vec<Part>) -> Personalizable {
        let literal_len = parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.len(),
                Part::Field(_) => 0,
            })
            .sum();
        Personalizable { parts, literal_len }
    }

    /// A body of literal stretches with a field after each but the last.
    #[cfg(test)]
    pub(crate) fn with_fields(pieces: &[(&str, Field)], last: &str) -> Personalizable {
        let mut parts = Vec::new();
        for (literal, field) in pieces {
            parts.push(Part::Literal(literal.to_string()));
            parts.push(Part::Field(*field));
        }
        parts.push(Part::Literal(last.to_string()));
        Personalizable::from_parts(parts)
    }

    /// A body without fields: `text` as it is.
    pub fn literal(text: &str) -> Personalizable {
        Personalizable::from_parts(vec![Part::Literal(text.to_string())])
    }

    /// The same body with every literal stretch rewritten by `f`, in order.
    pub fn map_literals(&self, mut f: impl FnMut(&str) -> String) -> Personalizable {
        let parts: Vec<Part> = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => Part::Literal(f(s)),
                Part::Field(field) => Part::Field(*field),
            })
            .collect();
        Personalizable::from_parts(parts)
    }

    /// The literal stretches between the fields.
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Literal(s) => Some(s.as_str()),
            Part::Field(_) => None,
        })
    }

    /// Whether `field` has a place in the body.
    pub fn has(&self, field: Field) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Field(f) if *f == field))
    }

    /// The length of the literal text, without the fields.
    pub fn len(&self) -> usize {
        self.literal_len
    }

    pub fn is_empty(&self) -> bool {
        self.literal_len == 0 && self.parts.is_empty()
    }

    /// The body for one recipient; `html` escapes the values for HTML.
    pub fn fill(&self, r: &ReaderFields<'_>, html: bool) -> String {
        let mut out = String::with_capacity(self.literal_len + 256);
        self.fill_into(&mut out, r, html, |_| {});
        out
    }

    /// [`Personalizable::fill`], appending to `out`; `spliced` hears where in
    /// `out` each field's value went.
    pub fn fill_into(
        &self,
        out: &mut String,
        r: &ReaderFields<'_>,
        html: bool,
        mut spliced: impl FnMut(Range<usize>),
    ) {
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Field(f) => {
                    let start = out.len();
                    let value = match f {
                        Field::Email => r.email,
                        Field::Name => r.name,
                        Field::UnsubscribeUrl => r.unsubscribe_url,
                        Field::PreferencesUrl => r.preferences_url,
                        Field::Tag => r.tag,
                    };
                    if html {
                        push_escaped(out, value);
                    } else {
                        out.push_str(value);
                    }
                    spliced(start..out.len());
                }
            }
        }
    }
}

fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
}

/// One reader's values for the fields of a [`Personalizable`] body.
#[derive(Debug, Clone, Copy)]
pub struct ReaderFields<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub unsubscribe_url: &'a str,
    pub preferences_url: &'a str,
    /// The email's counting tag; empty when nothing is counted.
    pub tag: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_filled_and_escaped_for_html() {
        let markers = Markers::new();
        let p = markers.split(&format!(
            "<a href=\"{}\">x</a> {} {}",
            markers.of(Field::UnsubscribeUrl),
            markers.of(Field::Name),
            markers.of(Field::Email)
        ));
        let r = ReaderFields {
            email: "a@b.co",
            name: "<Kim & Lee>",
            unsubscribe_url: "https://e.x/unsubscribe/abc",
            preferences_url: "https://e.x/preferences/abc",
            tag: "",
        };
        assert_eq!(
            p.fill(&r, true),
            "<a href=\"https://e.x/unsubscribe/abc\">x</a> &lt;Kim &amp; Lee&gt; a@b.co"
        );
        assert_eq!(
            p.fill(&r, false),
            "<a href=\"https://e.x/unsubscribe/abc\">x</a> <Kim & Lee> a@b.co"
        );
    }

    #[test]
    fn text_cannot_spell_a_field() {
        let markers = Markers::new();
        let forged = format!(
            "\u{E000}email\u{E001} {} \u{E000}:email\u{E001}",
            Markers::new().of(Field::Email)
        );
        let p = markers.split(&format!("{forged} {}", markers.of(Field::Email)));
        let r = ReaderFields {
            email: "a@b.co",
            name: "",
            unsubscribe_url: "",
            preferences_url: "",
            tag: "",
        };
        assert_eq!(p.fill(&r, false), format!("{forged} a@b.co"));
        assert_eq!(Personalizable::literal(&forged).fill(&r, false), forged);
    }
}
