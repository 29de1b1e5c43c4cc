//! The measuring tool of `bench/bench.sh`; each command prints one JSON object.
//! Usage: [`USAGE`], printed when no command is given.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use bench::stats::{ms, quantile};

type Result<T> = std::result::Result<T, String>;

struct Args(HashMap<String, Vec<String>>);

impl Args {
    fn parse(raw: &[String]) -> Result<Self> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        let mut it = raw.iter();
        while let Some(key) = it.next() {
            let key = key
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --option, got {key:?}"))?;
            let value = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            map.entry(key.to_owned()).or_default().push(value.clone());
        }
        Ok(Self(map))
    }

    fn all(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    fn one(&self, key: &str) -> Result<&str> {
        self.all(key)
            .last()
            .map(String::as_str)
            .ok_or_else(|| format!("--{key} is required"))
    }

    fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T> {
        match self.all(key).last() {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{key}: bad number {v:?}")),
        }
    }
}

fn secs(args: &Args, default: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(args.num("secs", default)?).map_err(|e| e.to_string())
}

fn bcrypt(args: &Args) -> Result<Value> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rate = bench::bcrypt_rate(
        args.num("cost", 12)?,
        args.num("threads", cores)?,
        secs(args, 10.0)?,
    )?;
    Ok(json!({
        "threads": rate.threads,
        "verifies": rate.verifies,
        "secs": rate.wall.as_secs_f64(),
        "per_sec": rate.per_sec(),
    }))
}

async fn probe(args: &Args) -> Result<Value> {
    let out = bench::probe(args.one("url")?, args.num("rate", 50)?, secs(args, 10.0)?).await?;
    let q = |p| quantile(&out.latencies, p).map(ms);
    Ok(json!({
        "n": out.latencies.len(),
        "errors": out.errors,
        "p50_ms": q(0.5),
        "p99_ms": q(0.99),
        "max_ms": q(1.0),
    }))
}

fn tokens(args: &Args) -> Result<()> {
    let user_id = Uuid::parse_str(args.one("user-id")?).map_err(|e| e.to_string())?;
    let sid = match args.all("session-id").last() {
        Some(sid) => Uuid::parse_str(sid).map_err(|e| e.to_string())?,
        None => Uuid::new_v4(),
    };
    let tokens = bench::tokens(
        args.one("secret")?,
        user_id,
        args.one("username")?,
        sid,
        args.num("count", 1)?,
    )?;
    println!("{}", tokens.join("\n"));
    Ok(())
}

async fn lambda(args: &Args) -> Result<Value> {
    let exe = PathBuf::from(args.one("exe")?);
    let mut events = Vec::new();
    for path in args.all("event") {
        let mut text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        if let Some(token) = args.all("token").last() {
            text = text.replace("TOKEN", token);
        } else if let Some(secret) = args.all("secret").last() {
            let user = Uuid::parse_str("550e8400-e29b-41d4-a716-446655440000")
                .map_err(|e| e.to_string())?;
            let token = bench::tokens(secret, user, "john_doe", Uuid::new_v4(), 1)?.remove(0);
            text = text.replace("TOKEN", &token);
        }
        if let Some(id) = args.all("user-id").last() {
            text = text.replace("550e8400-e29b-41d4-a716-446655440000", id);
        }
        events.push(serde_json::from_str::<Value>(&text).map_err(|e| format!("{path}: {e}"))?);
    }
    let env = args
        .all("env")
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("--env wants KEY=VALUE, got {kv:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let runs: usize = args.num("runs", 20)?;
    let invocations: usize = args.num("invocations", 1)?;
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut first_status = Vec::new();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    let mut peak = 0;
    for _ in 0..runs {
        let run =
            bench::runtime::run(&exe, &env, &events, invocations, Duration::from_secs(30)).await?;
        cold.push(run.cold);
        warm.extend(run.warm);
        first_status.push(run.first_status);
        for (status, n) in run.statuses {
            *statuses.entry(status).or_default() += n;
        }
        peak = peak.max(run.peak_rss_kib.unwrap_or(0));
    }
    let q = |p| quantile(&cold, p).map(ms);
    Ok(json!({
        "runs": runs,
        "invocations": invocations,
        "cold_ms": cold.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "median_ms": q(0.5),
        "min_ms": q(0.0),
        "p90_ms": q(0.9),
        "warm_median_ms": quantile(&warm, 0.5).map(ms),
        "first_status": first_status,
        "statuses": statuses,
        "peak_rss_kib": peak,
    }))
}

/// The commands and their options.
const USAGE: &str = "\
usage:
  bench bcrypt  --cost 12 --secs 10 [--threads N]
  bench probe   --url http://127.0.0.1:3000/ --rate 50 --secs 10
  bench tokens  --secret S --user-id UUID --username NAME --count 4096   (one per line)
  bench lambda  --exe target/release/auth --event fixtures/events/auth-health.json
                [--event ...] [--runs 20] [--invocations 1] [--env KEY=VALUE]...
                [--secret S]   (replaces TOKEN in the events with a signed token)
                [--token T] [--user-id UUID]   (TOKEN and the fixtures' user id replaced)
                (with --invocations 2 or more, warm_median_ms: hand-out to answer after the first)";

#[tokio::main]
async fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match raw.split_first() {
        Some((command, rest)) => match Args::parse(rest) {
            Ok(args) => match command.as_str() {
                "bcrypt" => bcrypt(&args).map(Some),
                "probe" => probe(&args).await.map(Some),
                "tokens" => tokens(&args).map(|()| None),
                "lambda" => lambda(&args).await.map(Some),
                other => Err(format!("unknown command {other:?}")),
            },
            Err(e) => Err(e),
        },
        None => Err(USAGE.into()),
    };
    match outcome {
        Ok(Some(value)) => println!("{value}"),
        Ok(None) => {}
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}
