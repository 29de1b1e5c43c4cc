//! The command line of `local emulate`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::pipeline::DEFAULT_MAX_INSTANCES;
use crate::repo::default_template;

/// `local emulate`: the API as template.yaml deploys it, on localhost, over the
/// `bootstrap` binaries of `sam build`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "local emulate")]
pub struct Cli {
    /// The port of the emulated API, on 127.0.0.1.
    #[arg(long, value_name = "N", default_value_t = 3002)]
    pub port: u16,
    /// The SAM template to emulate.
    #[arg(long, value_name = "PATH", default_value_os_t = default_template())]
    pub template: PathBuf,
    /// Where `sam build` put `<LogicalId>/bootstrap`; without it, `scripts/emulator/sam_build.sh`
    /// runs and `.aws-sam/build` is used.
    #[arg(long, value_name = "DIR")]
    pub build_dir: Option<PathBuf>,
    /// The template's parameters, over their defaults (as `sam deploy` takes them).
    #[arg(
        long = "parameter-overrides",
        value_name = "NAME=VALUE",
        num_args = 1..,
        action = clap::ArgAction::Append,
        value_parser = parameter,
    )]
    pub parameter_overrides: Vec<(String, String)>,
    /// A DynamoDB to use instead of a moto of our own with the template's IAM
    /// policies enforced.
    #[arg(long, value_name = "URL")]
    pub dynamodb_endpoint: Option<String>,
    /// Processes per function at most, standing in for Lambda's concurrency limit.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_INSTANCES, value_parser = positive)]
    pub max_instances: usize,
}

impl Cli {
    /// The options in `args` (what follows `local emulate`); on `--help` or a bad
    /// option, prints clap's answer and exits.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Self {
        <Self as clap::Parser>::parse_from(std::iter::once("local emulate".to_owned()).chain(args))
    }

    /// The parameter overrides by name; the last one given for a name wins.
    pub fn parameters(&self) -> BTreeMap<String, String> {
        self.parameter_overrides.iter().cloned().collect()
    }
}

fn parameter(pair: &str) -> Result<(String, String), String> {
    pair.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("takes NAME=VALUE, got {pair:?}"))
}

fn positive(text: &str) -> Result<usize, String> {
    text.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "takes a positive number".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("local emulate").chain(args.iter().copied()))
    }

    #[test]
    fn the_defaults_are_port_3002_the_repo_template_and_ten_instances() {
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.port, 3002);
        assert_eq!(cli.template, default_template());
        assert_eq!(cli.build_dir, None);
        assert!(cli.parameters().is_empty());
        assert_eq!(cli.dynamodb_endpoint, None);
        assert_eq!(cli.max_instances, DEFAULT_MAX_INSTANCES);
    }

    #[test]
    fn parameter_overrides_take_several_pairs_until_the_next_option_and_may_repeat() {
        let cli = parse(&[
            "--parameter-overrides",
            "BcryptCost=10",
            "RegisterMaxPerIp=1000000",
            "--port",
            "4000",
            "--parameter-overrides",
            "BcryptCost=12",
            "Empty=",
        ])
        .unwrap();
        assert_eq!(cli.port, 4000);
        assert_eq!(
            cli.parameters(),
            BTreeMap::from([
                ("BcryptCost".to_owned(), "12".to_owned()),
                ("Empty".to_owned(), String::new()),
                ("RegisterMaxPerIp".to_owned(), "1000000".to_owned()),
            ])
        );
    }

    #[test]
    fn bad_values_and_unknown_options_are_refused() {
        for args in [
            &["--port", "http"][..],
            &["--port"],
            &["--max-instances", "0"],
            &["--max-instances", "many"],
            &["--parameter-overrides", "NoEquals"],
            &["--parameter-overrides"],
            &["--verbose"],
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
    }

    #[test]
    fn every_option_is_read() {
        let cli = parse(&[
            "--template",
            "t.yaml",
            "--build-dir",
            "build",
            "--dynamodb-endpoint",
            "http://127.0.0.1:8000",
            "--max-instances",
            "2",
        ])
        .unwrap();
        assert_eq!(cli.template, PathBuf::from("t.yaml"));
        assert_eq!(cli.build_dir, Some(PathBuf::from("build")));
        assert_eq!(
            cli.dynamodb_endpoint.as_deref(),
            Some("http://127.0.0.1:8000")
        );
        assert_eq!(cli.max_instances, 2);
    }
}
