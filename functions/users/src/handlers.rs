//! The users handlers, one per route of the spec.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use chrono::{SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::config::ProfileEmails;
use domain::{Email, Username};
use errors::{Error, Json, Query};
use stores::{Cursor, Profile, ProfilePatch};

use crate::AppState;
use crate::auth::AuthUser;

/// Longest `full_name`, in characters.
pub const MAX_FULL_NAME_CHARS: usize = 100;
/// Longest `bio`, in characters.
pub const MAX_BIO_CHARS: usize = 1000;
/// Page size of `GET /users` without `?limit=`.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `?limit=` of `GET /users`.
pub const MAX_LIMIT: usize = 1000;
pub use edge::http::NEXT_CURSOR;
/// Most bytes of JSON in one `GET /users` page: the page ends before the profile that
/// would pass it (but always holds one; a valid profile is a few KiB at most). Half the
/// gateway's relay cap (asserted where both are known, in `local`), and under a sixth of
/// Lambda's 6 MB response limit even after lambda_http escapes the body into its reply.
pub const MAX_PAGE_BYTES: usize = 512 * 1024;

/// Lambda's limit on a synchronous response payload.
const LAMBDA_MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
const _: () = assert!(2 * MAX_PAGE_BYTES < LAMBDA_MAX_RESPONSE_BYTES);

pub async fn health() -> Json<Value> {
    Json(json!({
        "status": "ok",
        "service": "user-service",
        "message": "User service is running"
    }))
}

/// A profile as the spec shows it; `email` is `null` where `PROFILE_EMAILS=owner` hides
/// it from a reader who is not its owner.
#[derive(Serialize)]
pub struct ProfileBody {
    user_id: Uuid,
    username: String,
    email: Option<String>,
    full_name: String,
    bio: String,
    created_at: String,
}

impl ProfileBody {
    /// `p` as `reader` may see it under `emails`.
    fn shown(p: Profile, reader: Uuid, emails: ProfileEmails) -> Self {
        let email = match emails {
            ProfileEmails::All => Some(p.email),
            ProfileEmails::Owner => (p.user_id == reader).then_some(p.email),
        };
        Self {
            user_id: p.user_id,
            username: p.username,
            email,
            full_name: p.full_name,
            bio: p.bio,
            created_at: p.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }
}

#[derive(Serialize)]
pub struct Done {
    user_id: Uuid,
    message: &'static str,
}

#[derive(Deserialize)]
pub struct ListParams {
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /users?limit=&cursor=`: one page of at most `limit` profiles and
/// [`MAX_PAGE_BYTES`] of JSON, in the store's stable order (`user_id` in memory, the
/// `Scan`'s on DynamoDB). When more remain, the
/// `X-Next-Cursor` response header holds the opaque `cursor` to pass for the next
/// page; its absence means this page is the last.
pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(params): Query<ListParams>,
) -> Result<(HeaderMap, Vec<u8>), Error> {
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}"
                ))
            })?,
    };
    let after = params.cursor.as_deref().map(Cursor::decode).transpose()?;
    let page = state.profiles.list(limit, after).await?;
    let mut body = Vec::with_capacity(MAX_PAGE_BYTES.min(64 * 1024));
    body.push(b'[');
    let mut next = page.next;
    let mut last_included = None;
    for profile in page.items {
        let user_id = profile.user_id;
        let shown = ProfileBody::shown(profile, caller.user_id, state.emails);
        let item = serde_json::to_vec(&shown).map_err(Error::internal)?;
        if let Some(last) = last_included {
            if body.len() + 1 + item.len() + 1 > MAX_PAGE_BYTES {
                next = Some(Cursor::after(last));
                break;
            }
            body.push(b',');
        }
        body.extend_from_slice(&item);
        last_included = Some(user_id);
    }
    body.push(b']');
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(next) = next {
        let value = HeaderValue::from_str(&next.encode()).map_err(Error::internal)?;
        headers.insert(NEXT_CURSOR, value);
    }
    Ok((headers, body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    user_id: String,
    username: String,
    email: String,
    full_name: String,
    bio: String,
}

/// `POST /users`: the caller's own profile. The token is checked when the request
/// arrives and again once its body is in: a token that expired meanwhile is refused,
/// and the write holds only while the account and the token's session still live
/// ([`AuthUser::write_guard`]), so a create landing after `DELETE /account` or a logout
/// writes nothing (401).
pub async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    Json(req): Json<CreateRequest>,
) -> Result<Json<Done>, Error> {
    let guard = caller.write_guard(Utc::now().timestamp())?;
    let user_id = parse_user_id(&req.user_id)?;
    let username = Username::parse(&req.username)?;
    let email = Email::parse(&req.email)?;
    check_full_name(&req.full_name)?;
    check_bio(&req.bio)?;
    require_owner(&caller, user_id)?;
    if !username.as_str().eq_ignore_ascii_case(&caller.username) {
        return Err(Error::ForeignUsername);
    }
    let profile = Profile {
        user_id,
        username: caller.username,
        email: email.as_str().to_owned(),
        full_name: req.full_name,
        bio: req.bio,
        created_at: Utc::now().trunc_subsecs(0),
    };
    state.profiles.create(&profile, &guard).await?;
    tracing::info!(%user_id, "profile created");
    Ok(Json(Done {
        user_id,
        message: "Profile created successfully",
    }))
}

/// `GET /users/{id}`: the profile is read while the token's session is looked up
/// ([`Authenticator::check_with`](crate::Authenticator::check_with)): one storage round
/// trip. The answers are the same as checking first: the token's errors, then the id's.
pub async fn get_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ProfileBody>, Error> {
    let token = edge::http::bearer_token(&headers)?;
    let user_id = match path {
        Ok(Path(raw)) => parse_user_id(&raw),
        Err(_) => Err(Error::bad_request("user_id must be a UUID")),
    };
    let read = async {
        match &user_id {
            Ok(id) => state.profiles.get(*id).await.map(Some),
            Err(_) => Ok(None),
        }
    };
    let (caller, profile) = state.auth.check_with(token, read).await?;
    user_id?;
    let profile = profile?.flatten().ok_or(Error::UserNotFound)?;
    Ok(Json(ProfileBody::shown(
        profile,
        caller.user_id,
        state.emails,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    full_name: Option<String>,
    bio: Option<String>,
}

/// `PUT /users/{id}`: changes only the fields present; the others stay. Guarded as
/// [`create`] is.
pub async fn update(
    State(state): State<AppState>,
    caller: AuthUser,
    UserIdPath(user_id): UserIdPath,
    Json(req): Json<UpdateRequest>,
) -> Result<Json<Done>, Error> {
    let guard = caller.write_guard(Utc::now().timestamp())?;
    if let Some(full_name) = &req.full_name {
        check_full_name(full_name)?;
    }
    if let Some(bio) = &req.bio {
        check_bio(bio)?;
    }
    require_owner(&caller, user_id)?;
    let patch = ProfilePatch {
        full_name: req.full_name,
        bio: req.bio,
    };
    state.profiles.update(user_id, &patch, &guard).await?;
    Ok(Json(Done {
        user_id,
        message: "Profile updated successfully",
    }))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: AuthUser,
    UserIdPath(user_id): UserIdPath,
) -> Result<Json<Done>, Error> {
    require_owner(&caller, user_id)?;
    state.profiles.delete(user_id).await?;
    tracing::info!(%user_id, "profile deleted");
    Ok(Json(Done {
        user_id,
        message: "Profile deleted successfully",
    }))
}

fn require_owner(caller: &AuthUser, user_id: Uuid) -> Result<(), Error> {
    if caller.user_id == user_id {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

fn parse_user_id(raw: &str) -> Result<Uuid, Error> {
    Uuid::try_parse(raw).map_err(|_| Error::bad_request("user_id must be a UUID"))
}

/// The `{id}` of `/users/{id}` as a UUID; anything else is a 400.
pub struct UserIdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for UserIdPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| Error::bad_request("user_id must be a UUID"))?;
        parse_user_id(&raw).map(Self)
    }
}

fn check_full_name(full_name: &str) -> Result<(), Error> {
    if full_name.chars().count() > MAX_FULL_NAME_CHARS {
        return Err(Error::bad_request(format!(
            "full_name must be at most {MAX_FULL_NAME_CHARS} characters long"
        )));
    }
    if full_name.chars().any(char::is_control) {
        return Err(Error::bad_request(
            "full_name must not contain control characters",
        ));
    }
    check_no_bidi_controls("full_name", full_name)
}

/// A bio may hold tabs and line breaks (`\n`, or `\r\n` as browsers send a textarea's),
/// but no other control character and no lone `\r`.
fn check_bio(bio: &str) -> Result<(), Error> {
    if bio.chars().count() > MAX_BIO_CHARS {
        return Err(Error::bad_request(format!(
            "bio must be at most {MAX_BIO_CHARS} characters long"
        )));
    }
    let mut chars = bio.chars().peekable();
    while let Some(c) = chars.next() {
        let allowed = match c {
            '\t' | '\n' => true,
            '\r' => chars.next_if_eq(&'\n').is_some(),
            c => !c.is_control(),
        };
        if !allowed {
            return Err(Error::bad_request(
                "bio must not contain control characters other than tab, line feed and CR LF",
            ));
        }
    }
    check_no_bidi_controls("bio", bio)
}

/// Refuses the explicit bidi embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069): unterminated, they reverse whatever is displayed after the field.
fn check_no_bidi_controls(field: &str, text: &str) -> Result<(), Error> {
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if text.chars().any(bidi) {
        return Err(Error::bad_request(format!(
            "{field} must not contain bidirectional override or isolate characters"
        )));
    }
    Ok(())
}
