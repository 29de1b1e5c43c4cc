//! The HTTP API's routes as the template declares them: `METHOD /path` with `{param}`
//! and `{param+}` segments, `ANY`, `$default`; [`crate::apigw::select`] chooses among
//! them.

use crate::template::TemplateError;

/// One `HttpApi` event of a function: `METHOD /path` (or `ANY`), or `$default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `None` is `ANY`.
    pub method: Option<String>,
    /// `None` is the `$default` route.
    pub path: Option<Vec<Segment>>,
    pub function: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// `{name}`: exactly one segment.
    Param(String),
    /// `{name+}`: the rest of the path, one segment or more (last segment only).
    Greedy(String),
}

impl Route {
    /// The route key as API Gateway names it in events: `POST /api/login`, `$default`.
    pub fn key(&self) -> String {
        let Some(segments) = &self.path else {
            return "$default".to_owned();
        };
        let path: String = if segments.is_empty() {
            "/".to_owned()
        } else {
            segments
                .iter()
                .map(|s| match s {
                    Segment::Literal(l) => format!("/{l}"),
                    Segment::Param(p) => format!("/{{{p}}}"),
                    Segment::Greedy(p) => format!("/{{{p}+}}"),
                })
                .collect()
        };
        format!("{} {path}", self.method.as_deref().unwrap_or("ANY"))
    }
}

/// `/api/users/{id}` → segments; `{proxy+}` only last.
pub fn parse_path(path: &str) -> Result<Vec<Segment>, TemplateError> {
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| TemplateError(format!("path {path:?} does not start with /")))?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let mut segments = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) => match name.strip_suffix('+') {
                Some(greedy) if i + 1 == parts.len() => Segment::Greedy(greedy.to_owned()),
                Some(_) => {
                    return Err(TemplateError(format!(
                        "path {path:?}: a greedy variable must come last"
                    )));
                }
                None => Segment::Param(name.to_owned()),
            },
            None if part.is_empty() => {
                return Err(TemplateError(format!("path {path:?} has an empty segment")));
            }
            None => Segment::Literal((*part).to_owned()),
        };
        segments.push(segment);
    }
    Ok(segments)
}
