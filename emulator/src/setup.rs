//! What `local emulate` installs and starts before serving: the `sam build` artifacts
//! and a DynamoDB and SES (one moto, one request at a time) with the template's tables,
//! its functions' sender (`MAIL_FROM`) verified, and one IAM user per function holding
//! that function's policy. Each step is one of the repo's scripts, so the test command
//! and the emulation share them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::template::{REGION, Template};
use crate::{Cli, Error};

/// `scripts/emulator/sam_build.sh`: `sam build` (x86_64 where the arm64 standard library is
/// missing); the bootstraps land in `.aws-sam/build/<LogicalId>/bootstrap`.
pub async fn sam_build(
    repo: &Path,
    parameters: &BTreeMap<String, String>,
) -> Result<PathBuf, Error> {
    let mut command = Command::new("bash");
    command
        .arg(repo.join("scripts/emulator/sam_build.sh"))
        .current_dir(repo);
    if let Some(arch) = parameters.get("Architecture") {
        command.env("SAM_BUILD_ARCH", arch);
    }
    run(command, "scripts/emulator/sam_build.sh").await?;
    Ok(repo.join(".aws-sam/build"))
}

async fn run(mut command: Command, what: &str) -> Result<String, Error> {
    let failed = |source| Error::Io {
        path: what.into(),
        source,
    };
    // Its progress (stderr) goes to the terminal as it happens; stdout is the result.
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(failed)?
        .wait_with_output()
        .await
        .map_err(failed)?;
    if !output.status.success() {
        return Err(Error::Step {
            what: what.to_owned(),
            status: output.status,
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The DynamoDB and SES the functions use, and each function's credentials for them.
pub struct DynamoDb {
    /// Where both are (moto serves every AWS API on one port).
    pub endpoint: String,
    pub credentials: BTreeMap<String, BTreeMap<String, String>>,
    /// The moto started here; killed when this is dropped.
    _moto: Option<Child>,
}

/// Starts moto with IAM enforced (unless `--dynamodb-endpoint` names another server),
/// creates the template's tables there, verifies the functions' sender in its SES, and
/// one IAM user per function.
pub async fn dynamodb(repo: &Path, options: &Cli, template: &Template) -> Result<DynamoDb, Error> {
    let mut tools = Command::new("bash");
    tools
        .arg("-c")
        .arg("source scripts/tools.sh && tools_venv >&2")
        .current_dir(repo);
    run(tools, "installing the tools (scripts/tools.sh)").await?;
    let python = repo.join(".tools/venv/bin/python");

    let (endpoint, moto) = match &options.dynamodb_endpoint {
        Some(endpoint) => (endpoint.clone(), None),
        None => {
            let port = free_port()?;
            let log = repo.join(format!(".tools/moto-emulate-{port}.log"));
            let log_file = std::fs::File::create(&log).map_err(|source| Error::Io {
                path: log.clone(),
                source,
            })?;
            let child = Command::new(&python)
                .arg(repo.join("scripts/emulator/moto_serial.py"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .args(["--iam", "--exit-with-parent"])
                .stdout(log_file.try_clone().map_err(|source| Error::Io {
                    path: log.clone(),
                    source,
                })?)
                .stderr(log_file)
                .kill_on_drop(true)
                .spawn()
                .map_err(Error::Moto)?;
            let endpoint = format!("http://127.0.0.1:{port}");
            if !answers_http(&endpoint).await {
                return Err(Error::MotoSilent { endpoint, log });
            }
            tracing::info!(target: "emulate", "moto on {endpoint} (log: {})", log.display());
            (endpoint, Some(child))
        }
    };

    let tables = |id: &str| {
        template
            .tables
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NoTable(id.to_owned()))
    };
    let names = [
        ("--accounts", tables("AccountsTable")?),
        ("--profiles", tables("ProfilesTable")?),
        ("--security", tables("SecurityTable")?),
    ];
    let mut create = Command::new(&python);
    create
        .args(["-m", "scripts.emulator.create_tables"])
        .args(["--endpoint", &endpoint])
        .current_dir(repo)
        .envs(admin_env());
    for (flag, name) in &names {
        create.args([*flag, name.as_str()]);
    }
    run(create, "scripts/emulator/create_tables.py").await?;

    let senders = template.mail_senders();
    if !senders.is_empty() {
        let mut verify = Command::new(&python);
        verify
            .args(["-m", "scripts.emulator.ses_identities"])
            .args(["--endpoint", &endpoint])
            .args(&senders)
            .current_dir(repo)
            .envs(admin_env());
        match run(verify, "scripts/emulator/ses_identities.py").await {
            Ok(_) => {
                tracing::info!(target: "emulate", "SES identity verified: {}", senders.join(", "));
            }
            // Another server may be a DynamoDB without SES: then mails fail, as logged.
            Err(error) if moto.is_none() => {
                tracing::warn!(target: "emulate", "{error}: mails from {} will fail there", senders.join(", "));
            }
            Err(error) => return Err(error),
        }
    }

    let credentials = if moto.is_some() {
        let mut iam = Command::new(&python);
        iam.args(["-m", "scripts.emulator.iam"])
            .args(["--endpoint", &endpoint, "--template"])
            .arg(&options.template)
            .current_dir(repo)
            .envs(admin_env());
        for (flag, name) in &names {
            iam.args([*flag, name.as_str()]);
        }
        // The template's parameters as here (e.g. MailFrom in auth's SES grant).
        iam.arg("--parameter-overrides").args(
            template
                .parameters
                .iter()
                .map(|(name, value)| format!("{name}={value}")),
        );
        let printed = run(iam, "scripts/emulator/iam.py").await?;
        let credentials: BTreeMap<String, BTreeMap<String, String>> =
            serde_json::from_str(&printed).map_err(Error::Credentials)?;
        tracing::info!(target: "emulate", "IAM enforced: each function calls DynamoDB and SES with its own user and policy");
        credentials
    } else {
        tracing::warn!(target: "emulate", "--dynamodb-endpoint given: IAM policies are not enforced there");
        template
            .functions
            .iter()
            .map(|f| {
                (
                    f.id.clone(),
                    admin_env()
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                )
            })
            .collect()
    };
    Ok(DynamoDb {
        endpoint,
        credentials,
        _moto: moto,
    })
}

/// Credentials moto accepts before enforcement starts.
fn admin_env() -> [(&'static str, &'static str); 4] {
    [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
    ]
}

fn free_port() -> Result<u16, Error> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|a| a.port())
        .map_err(|source| Error::Io {
            path: "a free port for moto".into(),
            source,
        })
}

/// Whether moto at `endpoint` answers within 30 s.
async fn answers_http(endpoint: &str) -> bool {
    let client = reqwest::Client::new();
    for _ in 0..150 {
        if client
            .get(format!("{endpoint}/moto-api/"))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
