//! Where the other services are and how tokens are checked: `AUTH_MODE`,
//! `AUTH_SERVICE_URL` and `USER_SERVICE_URL`.

use settings::{ConfigError, Url, Vars, service_url};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Tokens verified in-process with the shared secret.
    #[default]
    Local,
    /// Tokens sent to `POST {AUTH_SERVICE_URL}/validate`, as the seed did.
    Remote,
}

/// How tokens are checked (`AUTH_MODE`) and where the other services are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Services {
    pub auth_mode: AuthMode,
    /// Base URL of the auth service (`AUTH_SERVICE_URL`): where the gateway forwards
    /// and users in remote mode validates. `None` when unset, as in AWS.
    pub auth_url: Option<Url>,
    /// Base URL of the users service (`USER_SERVICE_URL`); `None` when unset.
    pub users_url: Option<Url>,
}

impl Services {
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let url = |key: &str| vars.get(key).map(|v| service_url(key, &v)).transpose();
        Ok(Self {
            auth_mode: vars.choice(
                "AUTH_MODE",
                [("local", AuthMode::Local), ("remote", AuthMode::Remote)],
            )?,
            auth_url: url("AUTH_SERVICE_URL")?,
            users_url: url("USER_SERVICE_URL")?,
        })
    }
}

/// `base` joined with a request's `path` (which starts with `/`) and `query`. A
/// backslash stays data (`%5C`) instead of becoming a separator; dot segments are the
/// caller's to refuse, as the URL parser would resolve them.
pub fn join_service_url(base: &Url, path: &str, query: Option<&str>) -> Url {
    let mut url = base.clone();
    let path = path.replace('\\', "%5C");
    url.set_path(&format!("{}{path}", base.path().trim_end_matches('/')));
    url.set_query(query);
    url
}
